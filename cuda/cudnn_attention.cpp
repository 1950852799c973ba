// cuDNN fused attention through the cudnn-frontend graph API (header-only C++, shipped in the
// pip package nvidia-cudnn-frontend): Graph::sdpa / Graph::sdpa_backward with bf16 I/O, fp32
// compute, stats, top-left causal mask, GQA with Hkv < Hq. One graph per piece shape is built
// once (heuristic mode A) and cached. See cudnn_attention.h for how explicit positions map onto
// pieces.
#include "cuda/cudnn_attention.h"

#include <cuda_runtime_api.h>

#include <cmath>
#include <map>
#include <tuple>
#include <vector>

#include "core/log.h"
#include "cuda/attention_pieces.h"
#include "cuda/cuda_check.h"
#include "cuda/kernels.h"

#ifdef LCT_HAVE_CUDNN_FRONTEND
// cuDNN (and NVRTC, which some experimental frontend engines use) are loaded at run time, only
// when attention_impl = cudnn is asked for: binaries start and run without them.
#define CUDNN_FRONTEND_SKIP_JSON_LIB
#define NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING
#include <cudnn_frontend.h>
#include <dlfcn.h>

// The library handle cudnn-frontend's dynamic loading resolves cuDNN symbols from (its API asks
// the application to define and set it; set once, by CudnnAttention::available).
namespace cudnn_frontend {
void* cudnn_dlhandle = nullptr;
}
#endif

namespace lct::cuda {

#ifndef LCT_HAVE_CUDNN_FRONTEND

struct CudnnAttention::Impl {};

bool CudnnAttention::available(std::string* why) {
  if (why)
    *why = "this lctrain was built without cuDNN and the cudnn-frontend headers (install cuDNN 9 and "
           "'pip install nvidia-cudnn-frontend', then reconfigure; or set CUDNN_FRONTEND_ROOT)";
  return false;
}
CudnnAttention::CudnnAttention(cudaStream_t) {
  std::string why;
  available(&why);
  throw InputError(str("model.attention_impl = cudnn: ", why, "; or use attention_impl = own"));
}
CudnnAttention::~CudnnAttention() = default;
void CudnnAttention::forward(Tensor, Tensor, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                             const Tensor&) {}
void CudnnAttention::backward(Tensor, Tensor, Tensor, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const Tensor&, const Tensor&, const Tensor&) {}
int64_t CudnnAttention::workspace_bytes() const { return 0; }

#else

namespace fe = cudnn_frontend;

namespace {

enum Uid : int64_t { kQ = 1, kK, kV, kO, kStats, kdO, kdQ, kdK, kdV };

std::string cudnn_last_error() {
  char buf[1024] = {0};
  fe::detail::get_last_error_string(buf, sizeof(buf));
  return buf;
}

void check_fe(fe::error_t e, const char* step, const std::string& what) {
  if (e.is_good()) return;
  const std::string last = cudnn_last_error();
  throw Error(kExitFailure, str("cuDNN attention: ", step, " failed for ", what, ": ", e.get_message(),
                                last.empty() ? "" : str(" (cuDNN: ", last, ")"),
                                ". Use model.attention_impl = own to run without cuDNN"));
}

#define LCT_CUDNN_CHECK(call)                                                                          \
  do {                                                                                                 \
    cudnnStatus_t lct_s_ = (call);                                                                     \
    if (lct_s_ != CUDNN_STATUS_SUCCESS)                                                                \
      throw_gpu_error(#call, __FILE__, __LINE__, str(fe::detail::get_error_string(lct_s_), " ", cudnn_last_error())); \
  } while (0)

// A device buffer that only grows.
struct Grow {
  void* p = nullptr;
  size_t n = 0;
  ~Grow() {
    if (p) cudaFree(p);
  }
  void* get(size_t bytes, cudaStream_t s) {
    if (bytes > n) {
      if (p) {
        LCT_CUDA_CHECK(cudaStreamSynchronize(s));
        LCT_CUDA_CHECK(cudaFree(p));
        p = nullptr;
        n = 0;
      }
      LCT_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(bytes, 256)));
      n = std::max<size_t>(bytes, 256);
    }
    return p;
  }
};

// Strides of a [B, T, H, D] tensor viewed as cuDNN's (b, h, s, d).
std::vector<int64_t> bshd_strides(int64_t T, int64_t H, int64_t D) { return {T * H * D, D, H * D, 1}; }

}  // namespace

struct CudnnAttention::Impl {
  cudaStream_t stream = nullptr;
  cudnnHandle_t handle = nullptr;
  // (backward?, B, Hq, Hkv, D, nq, nk, Tq, Tk, causal)
  using Key = std::tuple<bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool>;
  std::map<Key, std::shared_ptr<fe::graph::Graph>> graphs;
  Grow workspace, o_tmp, stats_tmp, obf, dq_tmp, dk_tmp, dv_tmp;
  bool warned_fallback = false;

  std::shared_ptr<fe::graph::Graph> graph(bool bwd, int64_t B, int64_t Hq, int64_t Hkv, int64_t D, int64_t nq,
                                          int64_t nk, int64_t Tq, int64_t Tk, bool causal) {
    const Key key{bwd, B, Hq, Hkv, D, nq, nk, Tq, Tk, causal};
    auto it = graphs.find(key);
    if (it != graphs.end()) return it->second;
    const std::string what = str(bwd ? "sdpa_backward" : "sdpa", " B=", B, " Hq=", Hq, " Hkv=", Hkv, " D=", D,
                                 " q rows=", nq, " k rows=", nk, causal ? " causal" : " unmasked");
    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    auto tensor = [&](const char* name, int64_t uid, std::vector<int64_t> dim, std::vector<int64_t> stride) {
      return g->tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim(dim).set_stride(stride));
    };
    // Q, K, V (and O, dO in the backward) read the caller's [B, T, H, D] rows in place;
    // outputs go to packed temporaries.
    auto Q = tensor("Q", kQ, {B, Hq, nq, D}, bshd_strides(Tq, Hq, D));
    auto K = tensor("K", kK, {B, Hkv, nk, D}, bshd_strides(Tk, Hkv, D));
    auto V = tensor("V", kV, {B, Hkv, nk, D}, bshd_strides(Tk, Hkv, D));
    const float scale = 1.0f / std::sqrt(float(D));
    if (!bwd) {
      auto opt = fe::graph::SDPA_attributes().set_name("sdpa").set_generate_stats(true).set_attn_scale(scale);
      if (causal) opt.set_causal_mask(true);
      auto [O, Stats] = g->sdpa(Q, K, V, opt);
      O->set_output(true).set_uid(kO).set_dim({B, Hq, nq, D}).set_stride(bshd_strides(nq, Hq, D));
      Stats->set_output(true).set_uid(kStats).set_data_type(fe::DataType_t::FLOAT);
      Stats->set_dim({B, Hq, nq, 1}).set_stride({Hq * nq, nq, 1, 1});
    } else {
      auto O = tensor("O", kO, {B, Hq, nq, D}, bshd_strides(Tq, Hq, D));
      auto dO = tensor("dO", kdO, {B, Hq, nq, D}, bshd_strides(Tq, Hq, D));
      auto Stats = g->tensor(fe::graph::Tensor_attributes()
                                 .set_name("Stats")
                                 .set_uid(kStats)
                                 .set_dim({B, Hq, nq, 1})
                                 .set_stride({Hq * nq, nq, 1, 1})
                                 .set_data_type(fe::DataType_t::FLOAT));
      auto opt = fe::graph::SDPA_backward_attributes().set_name("sdpa_backward").set_attn_scale(scale);
      if (causal) opt.set_causal_mask(true);
      auto [dQ, dK, dV] = g->sdpa_backward(Q, K, V, O, dO, Stats, opt);
      dQ->set_output(true).set_uid(kdQ).set_dim({B, Hq, nq, D}).set_stride(bshd_strides(nq, Hq, D));
      dK->set_output(true).set_uid(kdK).set_dim({B, Hkv, nk, D}).set_stride(bshd_strides(nk, Hkv, D));
      dV->set_output(true).set_uid(kdV).set_dim({B, Hkv, nk, D}).set_stride(bshd_strides(nk, Hkv, D));
    }
    check_fe(g->validate(), "validate", what);
    check_fe(g->build_operation_graph(handle), "build_operation_graph", what);
    check_fe(g->create_execution_plans({fe::HeurMode_t::A}), "create_execution_plans", what);
    check_fe(g->check_support(handle), "check_support", what);
    check_fe(g->build_plans(handle), "build_plans", what);
    graphs.emplace(key, g);
    return g;
  }

  void run(fe::graph::Graph& g, std::unordered_map<int64_t, void*>& pack, const char* what) {
    int64_t ws = 0;
    check_fe(g.get_workspace_size(ws), "get_workspace_size", what);
    void* w = ws > 0 ? workspace.get(size_t(ws), stream) : nullptr;
    check_fe(g.execute(handle, pack, w), "execute", what);
  }
};

bool CudnnAttention::available(std::string* why) {
  if (!fe::cudnn_dlhandle) {
    for (const char* name : {"libcudnn.so.9", "libcudnn.so"}) {
      fe::cudnn_dlhandle = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
      if (fe::cudnn_dlhandle) break;
    }
    if (!fe::cudnn_dlhandle) {
      const char* err = dlerror();
      if (why)
        *why = str("cannot load libcudnn.so.9 (", err ? err : "not found",
                   "): install cuDNN 9 or put its lib folder on LD_LIBRARY_PATH");
      return false;
    }
  }
  const size_t v = fe::detail::get_backend_version();
  if (v < 90000) {
    if (why) *why = str("cuDNN ", v, " is too old: the fused attention path needs cuDNN 9");
    return false;
  }
  return true;
}

CudnnAttention::CudnnAttention(cudaStream_t stream) : impl_(std::make_unique<Impl>()) {
  std::string why;
  if (!available(&why)) throw InputError(str("model.attention_impl = cudnn: ", why, "; or use attention_impl = own"));
  impl_->stream = stream;
  LCT_CUDNN_CHECK(fe::detail::create_handle(&impl_->handle));
  LCT_CUDNN_CHECK(fe::detail::set_stream(impl_->handle, stream));
}

CudnnAttention::~CudnnAttention() {
  if (impl_ && impl_->handle) {
    cudaStreamSynchronize(impl_->stream);
    impl_->graphs.clear();
    fe::detail::destroy_handle(impl_->handle);
  }
}

int64_t CudnnAttention::workspace_bytes() const {
  const Impl& m = *impl_;
  return int64_t(m.workspace.n + m.o_tmp.n + m.stats_tmp.n + m.obf.n + m.dq_tmp.n + m.dk_tmp.n + m.dv_tmp.n);
}

namespace {

std::vector<int32_t> positions_to_host(const Tensor& t, cudaStream_t s) {
  std::vector<int32_t> h(static_cast<size_t>(t.numel()));
  if (!h.empty()) {
    LCT_CUDA_CHECK(cudaMemcpyAsync(h.data(), t.ptr, t.bytes(), cudaMemcpyDeviceToHost, s));
    LCT_CUDA_CHECK(cudaStreamSynchronize(s));
  }
  return h;
}

// Pieces beyond this many (scattered positions) are run by our own kernels instead.
constexpr size_t kMaxPieces = 64;

}  // namespace

void CudnnAttention::forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& qpos, const Tensor& kpos) {
  Impl& m = *impl_;
  const int64_t B = q.dim(0), Tq = q.dim(1), Hq = q.dim(2), D = q.dim(3), Tk = k.dim(1), Hkv = k.dim(2);
  const std::vector<AttnPiece> pieces = attention_pieces(positions_to_host(qpos, m.stream), positions_to_host(kpos, m.stream));
  const AttnDims dims{B, Tq, Tk, Hq, Hkv, D};
  if (pieces.size() > kMaxPieces) {
    if (!m.warned_fallback) warn("attention_impl = cudnn: positions too scattered for cuDNN's masks (", pieces.size(),
                                 " pieces); running our own kernels for such blocks");
    m.warned_fallback = true;
    Grow bounds;
    AttnPositions pos;
    pos.qpos = static_cast<const int32_t*>(qpos.ptr);
    pos.kpos = static_cast<const int32_t*>(kpos.ptr);
    attention_forward(static_cast<float*>(out.ptr), static_cast<float*>(lse.ptr), static_cast<const bf16*>(q.ptr),
                      static_cast<const bf16*>(k.ptr), static_cast<const bf16*>(v.ptr), pos, dims,
                      static_cast<int32_t*>(bounds.get(sizeof(int32_t) * attention_bounds_ints(dims, pos), m.stream)),
                      m.stream);
    LCT_CUDA_CHECK(cudaStreamSynchronize(m.stream));
    return;
  }
  LCT_CUDA_CHECK(cudaMemsetAsync(out.ptr, 0, out.bytes(), m.stream));
  fill_f32(static_cast<float*>(lse.ptr), -INFINITY, lse.numel(), m.stream);
  const bf16* qb = static_cast<const bf16*>(q.ptr);
  const bf16* kb = static_cast<const bf16*>(k.ptr);
  const bf16* vb = static_cast<const bf16*>(v.ptr);
  for (const AttnPiece& p : pieces) {
    auto g = m.graph(false, B, Hq, Hkv, D, p.nq, p.nk, Tq, Tk, p.causal);
    void* o = m.o_tmp.get(sizeof(bf16) * size_t(B * p.nq * Hq * D), m.stream);
    void* st = m.stats_tmp.get(sizeof(float) * size_t(B * Hq * p.nq), m.stream);
    std::unordered_map<int64_t, void*> pack{{kQ, const_cast<bf16*>(qb + p.q0 * Hq * D)},
                                            {kK, const_cast<bf16*>(kb + p.k0 * Hkv * D)},
                                            {kV, const_cast<bf16*>(vb + p.k0 * Hkv * D)},
                                            {kO, o},
                                            {kStats, st}};
    m.run(*g, pack, "sdpa");
    attention_merge(static_cast<float*>(out.ptr), static_cast<float*>(lse.ptr), o, DType::BF16,
                    static_cast<const float*>(st), B, Tq, p.q0, p.nq, Hq, D, m.stream);
  }
}

void CudnnAttention::backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q, const Tensor& k,
                              const Tensor& v, const Tensor& qpos, const Tensor& kpos, const Tensor& out,
                              const Tensor& lse) {
  Impl& m = *impl_;
  const int64_t B = q.dim(0), Tq = q.dim(1), Hq = q.dim(2), D = q.dim(3), Tk = k.dim(1), Hkv = k.dim(2);
  const std::vector<AttnPiece> pieces = attention_pieces(positions_to_host(qpos, m.stream), positions_to_host(kpos, m.stream));
  const AttnDims dims{B, Tq, Tk, Hq, Hkv, D};
  if (pieces.size() > kMaxPieces) {
    Grow bounds, delta;
    AttnPositions pos;
    pos.qpos = static_cast<const int32_t*>(qpos.ptr);
    pos.kpos = static_cast<const int32_t*>(kpos.ptr);
    attention_backward(static_cast<float*>(dq.ptr), static_cast<float*>(dk.ptr), static_cast<float*>(dv.ptr),
                       static_cast<const bf16*>(dout.ptr), static_cast<const bf16*>(q.ptr),
                       static_cast<const bf16*>(k.ptr), static_cast<const bf16*>(v.ptr), pos,
                       static_cast<const float*>(out.ptr), static_cast<const float*>(lse.ptr), dims,
                       static_cast<int32_t*>(bounds.get(sizeof(int32_t) * attention_bounds_ints(dims, pos), m.stream)),
                       static_cast<float*>(delta.get(sizeof(float) * attention_delta_floats(dims), m.stream)), m.stream);
    LCT_CUDA_CHECK(cudaStreamSynchronize(m.stream));
    return;
  }
  // cuDNN reads O in the I/O dtype: a bf16 copy of the final out, whose rows each piece uses with
  // the final lse (so each piece computes exactly its share of the gradients).
  bf16* ob = static_cast<bf16*>(m.obf.get(sizeof(bf16) * size_t(out.numel()), m.stream));
  convert(ob, DType::BF16, out.ptr, DType::F32, out.numel(), m.stream);
  const bf16* qb = static_cast<const bf16*>(q.ptr);
  const bf16* kb = static_cast<const bf16*>(k.ptr);
  const bf16* vb = static_cast<const bf16*>(v.ptr);
  const bf16* dob = static_cast<const bf16*>(dout.ptr);
  for (const AttnPiece& p : pieces) {
    auto g = m.graph(true, B, Hq, Hkv, D, p.nq, p.nk, Tq, Tk, p.causal);
    float* st = static_cast<float*>(m.stats_tmp.get(sizeof(float) * size_t(B * Hq * p.nq), m.stream));
    gather_rows_bhT(st, static_cast<const float*>(lse.ptr), B, Hq, Tq, p.q0, p.nq, m.stream);
    bf16* tdq = static_cast<bf16*>(m.dq_tmp.get(sizeof(bf16) * size_t(B * p.nq * Hq * D), m.stream));
    bf16* tdk = static_cast<bf16*>(m.dk_tmp.get(sizeof(bf16) * size_t(B * p.nk * Hkv * D), m.stream));
    bf16* tdv = static_cast<bf16*>(m.dv_tmp.get(sizeof(bf16) * size_t(B * p.nk * Hkv * D), m.stream));
    std::unordered_map<int64_t, void*> pack{{kQ, const_cast<bf16*>(qb + p.q0 * Hq * D)},
                                            {kK, const_cast<bf16*>(kb + p.k0 * Hkv * D)},
                                            {kV, const_cast<bf16*>(vb + p.k0 * Hkv * D)},
                                            {kO, ob + p.q0 * Hq * D},
                                            {kdO, const_cast<bf16*>(dob + p.q0 * Hq * D)},
                                            {kStats, st},
                                            {kdQ, tdq},
                                            {kdK, tdk},
                                            {kdV, tdv}};
    m.run(*g, pack, "sdpa_backward");
    add_rows_bf16_to_f32(static_cast<float*>(dq.ptr), Tq, p.q0, tdq, p.nq, B, Hq * D, m.stream);
    add_rows_bf16_to_f32(static_cast<float*>(dk.ptr), Tk, p.k0, tdk, p.nk, B, Hkv * D, m.stream);
    add_rows_bf16_to_f32(static_cast<float*>(dv.ptr), Tk, p.k0, tdv, p.nk, B, Hkv * D, m.stream);
  }
}

#endif  // LCT_HAVE_CUDNN_FRONTEND

}  // namespace lct::cuda
