// The cuBLASLt subset cuda/gemm.cpp calls, for the emulated device: descriptors live in the
// opaque structs' data words, cublasLtMatmul multiplies on the host in fp32 (bf16 products are
// exact in fp32), honouring transposes, leading dimensions, alpha/beta (C is not read when beta
// = 0) and bf16 or f32 output rounded to nearest even.
//
// The heuristic is deliberately as strict as cuBLAS documents its tensor-core kernels to be
// ("Tensor Core Usage": leading dimensions whose byte size is a multiple of 16, pointers aligned
// to 16 bytes): anything else gets "no algorithm" (CUBLAS_STATUS_NOT_SUPPORTED, zero results).
// The real library may fall back to slower kernels instead; a shape the emulator refuses is one
// gemm.cpp must not rely on. cublasLtMatmul also checks that every operand's extent lies inside
// one device allocation (it would read or write out of bounds on the GPU).
#include <cublasLt.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cuda/emu/emu_state.h"

struct cublasLtContext {
  uint32_t magic;
};

namespace lct::emu {
namespace {

constexpr uint32_t kDescMagic = 0x44455343, kLayoutMagic = 0x4c41594f, kPrefMagic = 0x50524546,
                   kAlgoMagic = 0x414c474f, kHandleMagic = 0x48414e44;
constexpr uint32_t kNeedAlign = 16;  // bytes: pointers and leading dimensions

struct Desc {
  uint32_t magic;
  cublasComputeType_t compute;
  cudaDataType_t scale;
  cublasOperation_t ta, tb;
};
struct Layout {
  uint32_t magic;
  cudaDataType_t type;
  uint64_t rows, cols;
  int64_t ld;
};
struct Pref {
  uint32_t magic;
  uint64_t workspace;
  uint32_t align[4];  // A, B, C, D minimum alignments the caller guarantees
};
struct Algo {
  uint32_t magic;
};

// The fields live in the opaque structs' data words, as the library's own do.
template <class T, class O> T read_opaque(const O* o) {
  static_assert(sizeof(T) <= sizeof(o->data) && std::is_trivially_copyable_v<T>);
  T t;
  std::memcpy(&t, o->data, sizeof(T));
  return t;
}
template <class T, class O> void write_opaque(O* o, const T& t) {
  static_assert(sizeof(T) <= sizeof(o->data) && std::is_trivially_copyable_v<T>);
  std::memcpy(o->data, &t, sizeof(T));
}

size_t elem_bytes(cudaDataType_t t) {
  switch (t) {
    case CUDA_R_16BF: return 2;
    case CUDA_R_32F: return 4;
    default: return 0;
  }
}

bool valid(const cublasLtMatrixLayoutOpaque_t* l) { return l && read_opaque<Layout>(l).magic == kLayoutMagic; }
bool valid(const cublasLtMatmulDescOpaque_t* d) { return d && read_opaque<Desc>(d).magic == kDescMagic; }

// Shapes and types the emulated kernels accept; CUBLAS_STATUS_SUCCESS when one applies.
cublasStatus_t check_problem(const Desc& d, const Layout& a, const Layout& b, const Layout& c, const Layout& dd) {
  if (d.compute != CUBLAS_COMPUTE_32F || d.scale != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (a.type != b.type || !elem_bytes(a.type) || c.type != dd.type || !elem_bytes(dd.type))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  const uint64_t m = d.ta == CUBLAS_OP_N ? a.rows : a.cols, k = d.ta == CUBLAS_OP_N ? a.cols : a.rows;
  const uint64_t kb = d.tb == CUBLAS_OP_N ? b.rows : b.cols, n = d.tb == CUBLAS_OP_N ? b.cols : b.rows;
  if (k != kb || c.rows != m || c.cols != n || dd.rows != m || dd.cols != n) return CUBLAS_STATUS_INVALID_VALUE;
  for (const Layout* l : {&a, &b, &c, &dd})
    if (l->ld < int64_t(std::max<uint64_t>(l->rows, 1))) return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

// Column-major element (r, col) of a layout as float.
float load(const void* p, const Layout& l, uint64_t r, uint64_t col) {
  const uint64_t i = col * uint64_t(l.ld) + r;
  if (l.type == CUDA_R_16BF) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

// The bytes an operand spans: (cols - 1) * ld + rows elements.
size_t extent_bytes(const Layout& l) {
  if (l.rows == 0 || l.cols == 0) return 0;
  return size_t((l.cols - 1) * uint64_t(l.ld) + l.rows) * elem_bytes(l.type);
}

void check_operand(const char* name, const void* p, const Layout& l) {
  const size_t need = extent_bytes(l);
  if (need == 0) return;
  const size_t have = device_bytes_from(p);
  if (have == 0)
    fatal("cublasLtMatmul: %s = %p is not device memory (%llu x %llu, ld %lld)", name, p,
          static_cast<unsigned long long>(l.rows), static_cast<unsigned long long>(l.cols),
          static_cast<long long>(l.ld));
  if (have < need)
    fatal("cublasLtMatmul: %s spans %zu bytes (%llu x %llu, ld %lld) but its allocation has %zu from %p", name, need,
          static_cast<unsigned long long>(l.rows), static_cast<unsigned long long>(l.cols),
          static_cast<long long>(l.ld), have, p);
}

bool aligned(const void* p) { return (reinterpret_cast<uintptr_t>(p) % kNeedAlign) == 0; }

}  // namespace
}  // namespace lct::emu

using namespace lct::emu;

extern "C" {

const char* cublasLtGetStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    default: return "CUBLAS_STATUS_INTERNAL_ERROR";
  }
}
const char* cublasLtGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    default: return "an internal operation failed";
  }
}

cublasStatus_t cublasLtCreate(cublasLtHandle_t* h) {
  if (!h) return CUBLAS_STATUS_INVALID_VALUE;
  *h = new cublasLtContext{kHandleMagic};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
  if (!h || h->magic != kHandleMagic) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->magic = 0;
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t compute, cudaDataType_t scale) {
  if (!d) return CUBLAS_STATUS_INVALID_VALUE;
  *d = new cublasLtMatmulDescOpaque_t{};
  write_opaque(*d, Desc{kDescMagic, compute, scale, CUBLAS_OP_N, CUBLAS_OP_N});
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
  if (d && !valid(d)) return CUBLAS_STATUS_INVALID_VALUE;
  delete d;
  return CUBLAS_STATUS_SUCCESS;
}
// Transposes only: an epilogue, bias or scale mode the emulator does not run is refused.
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t size) {
  if (!valid(d) || !buf) return CUBLAS_STATUS_INVALID_VALUE;
  Desc desc = read_opaque<Desc>(d);
  if (attr != CUBLASLT_MATMUL_DESC_TRANSA && attr != CUBLASLT_MATMUL_DESC_TRANSB) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
  int32_t op;
  std::memcpy(&op, buf, sizeof op);
  if (op != CUBLAS_OP_N && op != CUBLAS_OP_T) return CUBLAS_STATUS_NOT_SUPPORTED;
  (attr == CUBLASLT_MATMUL_DESC_TRANSA ? desc.ta : desc.tb) = cublasOperation_t(op);
  write_opaque(d, desc);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType type, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
  if (!l) return CUBLAS_STATUS_INVALID_VALUE;
  *l = new cublasLtMatrixLayoutOpaque_t{};
  write_opaque(*l, Layout{kLayoutMagic, type, rows, cols, ld});
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
  if (l && !valid(l)) return CUBLAS_STATUS_INVALID_VALUE;
  delete l;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* p) {
  if (!p) return CUBLAS_STATUS_INVALID_VALUE;
  *p = new cublasLtMatmulPreferenceOpaque_t{};
  write_opaque(*p, Pref{kPrefMagic, 0, {256, 256, 256, 256}});  // the library's default alignments
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
  delete p;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t size) {
  if (!p || !buf || read_opaque<Pref>(p).magic != kPrefMagic) return CUBLAS_STATUS_INVALID_VALUE;
  Pref pref = read_opaque<Pref>(p);
  switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
      if (size != sizeof(uint64_t)) return CUBLAS_STATUS_INVALID_VALUE;
      std::memcpy(&pref.workspace, buf, size);
      break;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
      if (size != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE;
      std::memcpy(&pref.align[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf, size);
      break;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  write_opaque(p, pref);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t d, cublasLtMatmulPreference_t pref,
                                              int requested, cublasLtMatmulHeuristicResult_t results[],
                                              int* found) {
  if (!h || h->magic != kHandleMagic) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!valid(desc) || !valid(a) || !valid(b) || !valid(c) || !valid(d) || !pref || requested < 1 || !results ||
      !found)
    return CUBLAS_STATUS_INVALID_VALUE;
  *found = 0;
  const Layout la = read_opaque<Layout>(a), lb = read_opaque<Layout>(b), lc = read_opaque<Layout>(c),
               ld = read_opaque<Layout>(d);
  const cublasStatus_t st = check_problem(read_opaque<Desc>(desc), la, lb, lc, ld);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  const Pref p = read_opaque<Pref>(pref);
  for (uint32_t al : p.align)
    if (al < kNeedAlign) return CUBLAS_STATUS_NOT_SUPPORTED;
  for (const Layout* l : {&la, &lb, &lc, &ld})
    if ((uint64_t(l->ld) * elem_bytes(l->type)) % kNeedAlign != 0) return CUBLAS_STATUS_NOT_SUPPORTED;
  results[0] = cublasLtMatmulHeuristicResult_t{};
  write_opaque(&results[0].algo, Algo{kAlgoMagic});
  results[0].workspaceSize = 0;
  results[0].state = CUBLAS_STATUS_SUCCESS;
  results[0].wavesCount = 1.0f;
  *found = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t a, const void* B, cublasLtMatrixLayout_t b, const void* beta,
                              const void* C, cublasLtMatrixLayout_t c, void* D, cublasLtMatrixLayout_t d,
                              const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspace_bytes,
                              cudaStream_t stream) {
  if (!h || h->magic != kHandleMagic) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!valid(desc) || !valid(a) || !valid(b) || !valid(c) || !valid(d) || !alpha || !beta)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (algo && read_opaque<Algo>(algo).magic != kAlgoMagic) return CUBLAS_STATUS_INVALID_VALUE;
  if (!stream_ok(stream)) return CUBLAS_STATUS_INVALID_VALUE;
  if (workspace_bytes && device_bytes_from(workspace) < workspace_bytes) return CUBLAS_STATUS_INVALID_VALUE;
  const Desc ds = read_opaque<Desc>(desc);
  const Layout la = read_opaque<Layout>(a), lb = read_opaque<Layout>(b), lc = read_opaque<Layout>(c),
               ld = read_opaque<Layout>(d);
  const cublasStatus_t st = check_problem(ds, la, lb, lc, ld);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  // The algorithm was chosen for 16-byte aligned operands.
  if (!aligned(A) || !aligned(B) || !aligned(C) || !aligned(D)) return CUBLAS_STATUS_NOT_SUPPORTED;
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  check_operand("A", A, la);
  check_operand("B", B, lb);
  if (be != 0.0f) check_operand("C", C, lc);
  check_operand("D", D, ld);

  // op(A) as rows of k and op(B) as columns of k, both contiguous for the dot products.
  const uint64_t m = ld.rows, n = ld.cols, k = ds.ta == CUBLAS_OP_N ? la.cols : la.rows;
  std::vector<float> ar(m * k), bc(n * k);
  for (uint64_t i = 0; i < m; ++i)
    for (uint64_t x = 0; x < k; ++x) ar[i * k + x] = ds.ta == CUBLAS_OP_N ? load(A, la, i, x) : load(A, la, x, i);
  for (uint64_t j = 0; j < n; ++j)
    for (uint64_t x = 0; x < k; ++x) bc[j * k + x] = ds.tb == CUBLAS_OP_N ? load(B, lb, x, j) : load(B, lb, j, x);
  std::vector<float> out(m);
  for (uint64_t j = 0; j < n; ++j) {
    const float* bj = &bc[j * k];
    for (uint64_t i = 0; i < m; ++i) {
      const float* ai = &ar[i * k];
      float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // fp32 accumulation, eight running sums
      uint64_t x = 0;
      for (; x + 8 <= k; x += 8)
        for (int u = 0; u < 8; ++u) s[u] += ai[x + u] * bj[x + u];
      for (; x < k; ++x) s[0] += ai[x] * bj[x];
      const float acc = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
      out[i] = al * acc + (be != 0.0f ? be * load(C, lc, i, j) : 0.0f);
    }
    for (uint64_t i = 0; i < m; ++i) {
      const uint64_t at = j * uint64_t(ld.ld) + i;
      if (ld.type == CUDA_R_16BF)
        static_cast<__nv_bfloat16*>(D)[at] = __float2bfloat16_rn(out[i]);
      else
        static_cast<float*>(D)[at] = out[i];
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
