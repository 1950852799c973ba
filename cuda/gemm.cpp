#include "cuda/gemm.h"

#include "cuda/cuda_check.h"

#define LCT_CUBLAS_CHECK(call)                                                                           \
  do {                                                                                                   \
    cublasStatus_t lct_s_ = (call);                                                                      \
    if (lct_s_ != CUBLAS_STATUS_SUCCESS)                                                                 \
      ::lct::cuda::throw_gpu_error(#call, __FILE__, __LINE__,                                            \
                                   ::lct::str(cublasLtGetStatusName(lct_s_), ": ", cublasLtGetStatusString(lct_s_))); \
  } while (0)

namespace lct::cuda {
namespace {

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::BF16: return CUDA_R_16BF;
    case DType::F32: return CUDA_R_32F;
    case DType::F64: return CUDA_R_64F;
    case DType::I32: return CUDA_R_32I;
  }
  return CUDA_R_32F;
}

// Largest power of two (up to 256) dividing the address: cuBLASLt picks kernels by alignment.
int alignment(const void* p) {
  const uintptr_t u = reinterpret_cast<uintptr_t>(p);
  int a = 256;
  while (a > 1 && (u % uintptr_t(a)) != 0) a >>= 1;
  return a;
}

}  // namespace

Gemm::Gemm(cudaStream_t stream, size_t workspace_bytes) : stream_(stream), workspace_bytes_(workspace_bytes) {
  LCT_CUBLAS_CHECK(cublasLtCreate(&handle_));
  if (workspace_bytes_) LCT_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
}

Gemm::~Gemm() {
  for (auto& kv : plans_) {
    cublasLtMatrixLayoutDestroy(kv.second.a);
    cublasLtMatrixLayoutDestroy(kv.second.b);
    cublasLtMatrixLayoutDestroy(kv.second.d);
    cublasLtMatmulDescDestroy(kv.second.desc);
  }
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

size_t Gemm::cached_plans() const {
  std::lock_guard<std::mutex> lock(mu_);
  return plans_.size();
}

void Gemm::rowmajor(int64_t M, int64_t N, int64_t K, const void* A, DType at, bool trans_a, const void* B, DType bt,
                    bool trans_b, void* C, DType ct, float alpha, float beta) {
  // Row-major C = opA(A) opB(B) is column-major C^T = opB(B)^T opA(A)^T: the operands swap and a
  // row-major array read column-major is its transpose, so the transpose flags stay as they are.
  colmajor(N, M, K, trans_b, B, bt, trans_b ? K : N, trans_a, A, at, trans_a ? M : K, C, ct, N, alpha, beta);
}

void Gemm::colmajor(int64_t m, int64_t n, int64_t k, bool ta, const void* A, DType at, int64_t lda, bool tb,
                    const void* B, DType bt, int64_t ldb, void* D, DType dt, int64_t ldd, float alpha, float beta) {
  if (m == 0 || n == 0) return;
  LCT_CHECK(at == bt && (at == DType::BF16 || at == DType::F32), "gemm inputs must both be bf16 or f32, got ",
            dtype_name(at), " and ", dtype_name(bt));
  LCT_CHECK(dt == DType::BF16 || dt == DType::F32, "gemm output must be bf16 or f32, got ", dtype_name(dt));
  if (k == 0) {  // nothing to multiply: D = beta D
    LCT_CHECK(beta == 0.0f || beta == 1.0f, "gemm with k = 0 and beta ", beta);
    if (beta == 0.0f) LCT_CUDA_CHECK(cudaMemsetAsync(D, 0, size_t(m * n) * dtype_size(dt), stream_));
    return;
  }
  const int aa = alignment(A), ab = alignment(B), ad = alignment(D);
  const Key key{m, n, k, ta, tb, int(at), int(bt), int(dt), lda, ldb, ldd, aa, ab, ad};
  std::lock_guard<std::mutex> lock(mu_);
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    Plan p;
    const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    LCT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    LCT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
    LCT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
    // Stored shapes: op(A) is m x k, so A is stored m x k (k x m when transposed); likewise B.
    LCT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, cuda_type(at), uint64_t(ta ? k : m), uint64_t(ta ? m : k), lda));
    LCT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, cuda_type(bt), uint64_t(tb ? n : k), uint64_t(tb ? k : n), ldb));
    LCT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.d, cuda_type(dt), uint64_t(m), uint64_t(n), ldd));

    cublasLtMatmulPreference_t pref = nullptr;
    LCT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t ws = workspace_bytes_;
    const uint32_t ua = uint32_t(aa), ub = uint32_t(ab), ud = uint32_t(ad);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &ua, sizeof(ua));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ub, sizeof(ub));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ud, sizeof(ud));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ud, sizeof(ud));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.d, p.d, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
      cublasLtMatrixLayoutDestroy(p.a);
      cublasLtMatrixLayoutDestroy(p.b);
      cublasLtMatrixLayoutDestroy(p.d);
      cublasLtMatmulDescDestroy(p.desc);
      throw_gpu_error("cublasLtMatmulAlgoGetHeuristic", __FILE__, __LINE__,
                      str(st != CUBLAS_STATUS_SUCCESS ? cublasLtGetStatusString(st) : "no algorithm", " for m=", m,
                          " n=", n, " k=", k, " op(A)=", ta ? "T" : "N", " op(B)=", tb ? "T" : "N", " ",
                          dtype_name(at), "->", dtype_name(dt), " lda=", lda, " ldb=", ldb, " ldd=", ldd,
                          " align=", aa, "/", ab, "/", ad));
    }
    p.algo = result.algo;
    it = plans_.emplace(key, p).first;
  }
  const Plan& p = it->second;
  LCT_CUBLAS_CHECK(cublasLtMatmul(handle_, p.desc, &alpha, A, p.a, B, p.b, &beta, D, p.d, D, p.d, &p.algo,
                                  workspace_, workspace_bytes_, stream_));
}

}  // namespace lct::cuda
