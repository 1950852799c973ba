// The cuda backend: binds the Ops interface to the kernels (kernels.h), cuBLASLt (gemm.h) and
// cuDNN (cudnn_attention.h). Checks shapes and dtypes, owns the stream, the allocation table and
// the scratch buffers; every op is enqueued on the one stream.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/log.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_ops.h"
#include "cuda/cudnn_attention.h"
#include "cuda/gemm.h"
#include "cuda/kernels.h"
#include "ops/allocation_ledger.h"

namespace lct {
namespace {

using cuda::bf16;

// A device buffer that only grows (scratch for kernels). Not counted in allocated_bytes().
class Scratch {
 public:
  Scratch() = default;
  ~Scratch() {
    if (ptr_) cudaFree(ptr_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void* get(size_t bytes, cudaStream_t s) {
    if (bytes > bytes_) {
      if (ptr_) {
        LCT_CUDA_CHECK(cudaStreamSynchronize(s));  // in-flight kernels may still read it
        LCT_CUDA_CHECK(cudaFree(ptr_));
        ptr_ = nullptr;
        bytes_ = 0;
      }
      const size_t want = std::max<size_t>(bytes, 256);
      LCT_CUDA_CHECK(cudaMalloc(&ptr_, want));
      bytes_ = want;
    }
    return ptr_;
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

void want(const Tensor& t, DType d, const char* what) {
  LCT_CHECK(t.dtype == d, what, " must be ", dtype_name(d), " on the cuda backend, got ", dtype_name(t.dtype));
}
void want_float(const Tensor& t, const char* what) {
  LCT_CHECK(t.dtype == DType::F32 || t.dtype == DType::BF16, what, " must be f32 or bf16 on the cuda backend, got ",
            dtype_name(t.dtype));
}
bf16* B(const Tensor& t) { return static_cast<bf16*>(t.ptr); }
float* F(const Tensor& t) { return static_cast<float*>(t.ptr); }
int32_t* I(const Tensor& t) { return static_cast<int32_t*>(t.ptr); }

// Rows of logits per LM-head chunk: a [rows, V] tile of about 32M elements (f32 + bf16 copy).
int64_t lmhead_chunk_rows(int64_t N, int64_t V) {
  return std::max<int64_t>(1, std::min<int64_t>(N, (int64_t(1) << 25) / std::max<int64_t>(V, 1)));
}

// A copy on the backend's copy stream: done on the copy stream when `done_` fires. A copy to the
// host is complete for the caller once the host waited for it; a copy to the device once the
// compute stream waits for it (later ops see the data). The destructor waits if nobody did.
class CudaCopy final : public PendingCopy {
 public:
  CudaCopy(cudaStream_t compute, cudaEvent_t done, bool to_host) : compute_(compute), done_(done), to_host_(to_host) {}
  ~CudaCopy() override {
    try {
      wait();
    } catch (...) {
    }
    cudaEventDestroy(done_);
  }
  void wait() override {
    if (waited_) return;
    waited_ = true;
    if (to_host_)
      LCT_CUDA_CHECK(cudaEventSynchronize(done_));
    else
      LCT_CUDA_CHECK(cudaStreamWaitEvent(compute_, done_, 0));
  }

 private:
  cudaStream_t compute_;
  cudaEvent_t done_;
  bool to_host_, waited_ = false;
};

class CudaOps final : public Ops {
 public:
  CudaOps(int device, AttentionImpl impl) : device_(device), impl_(impl) {
    LCT_CUDA_CHECK(cudaSetDevice(device_));
    cudaDeviceProp prop{};
    LCT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    num_sms_ = prop.multiProcessorCount;
    LCT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    LCT_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    gemm_ = std::make_unique<cuda::Gemm>(stream_);
    if (impl_ == AttentionImpl::Cudnn) cudnn_ = std::make_unique<cuda::CudnnAttention>(stream_);
    LCT_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host_partials_), sizeof(double) * kMaxPartials));
    device_name_ = prop.name;
  }
  ~CudaOps() override {
    cudaStreamSynchronize(stream_);
    cudnn_.reset();
    gemm_.reset();
    cudaStreamSynchronize(copy_stream_);
    for (void* p : ledger_.release_all()) cudaFree(p);
    for (void* p : host_ledger_.release_all()) cudaFreeHost(p);
    if (host_partials_) cudaFreeHost(host_partials_);
    cudaStreamDestroy(copy_stream_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override {
    return impl_ == AttentionImpl::Own ? "cuda" : "cuda-cudnn-attention";
  }
  DType act_dtype() const override { return DType::BF16; }
  DType acc_dtype() const override { return DType::F32; }

  cudaStream_t stream() const { return stream_; }
  AttentionImpl attention_impl() const { return impl_; }
  int64_t workspace_bytes() const {
    return int64_t(gemm_->workspace_bytes() + bounds_.bytes() + delta_.bytes() + logits_.bytes() +
                   dlogits_.bytes() + partials_.bytes()) +
           (cudnn_ ? cudnn_->workspace_bytes() : 0);
  }

  // ---- memory ----------------------------------------------------------------------------------
  void* alloc(size_t bytes, Mem kind) override {
    const size_t padded = std::max<size_t>((bytes + 255) / 256 * 256, 256);
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, padded);
    if (e != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw Error(kExitFailure, str("out of GPU memory on device ", device_, " (", device_name_, ") allocating ",
                                    bytes, " bytes: ", cuda::cuda_error_text(e), "; ", ledger_.allocated(),
                                    " bytes held by this backend, ", free_b, " of ", total_b,
                                    " free on the device. Reduce the micro-batch or sequence per rank, enable "
                                    "recomputation, or raise cp/tp"));
    }
    LCT_CUDA_CHECK(cudaMemsetAsync(p, 0, padded, stream_));
    LCT_CUDA_CHECK(cudaStreamSynchronize(stream_));  // zeroed before any other stream can see it
    ledger_.add(p, padded, kind);
    return p;
  }
  void free(void* p) override {
    if (!p) return;
    ledger_.remove(p);
    LCT_CUDA_CHECK(cudaFree(p));  // cudaFree waits for work that may still use p
  }
  // Pinned (page-locked) host memory: the copy engine reads and writes it without a staging copy,
  // so copies on copy_stream_ run while the compute stream works.
  void* alloc_host(size_t bytes, Mem kind) override {
    const size_t padded = std::max<size_t>((bytes + 255) / 256 * 256, 256);
    void* p = nullptr;
    const cudaError_t e = cudaMallocHost(&p, padded);
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw Error(kExitFailure, str("cannot allocate ", bytes, " bytes of pinned host memory for offloading: ",
                                    cuda::cuda_error_text(e), "; ", host_ledger_.allocated(),
                                    " bytes pinned by this backend already. Offload less (train.offload) or "
                                    "run fewer ranks per node"));
    }
    std::memset(p, 0, padded);
    host_ledger_.add(p, padded, kind);
    return p;
  }
  void free_host(void* p) override {
    if (!p) return;
    host_ledger_.remove(p);
    LCT_CUDA_CHECK(cudaStreamSynchronize(copy_stream_));  // no copy may still use it
    LCT_CUDA_CHECK(cudaFreeHost(p));
  }
  std::unique_ptr<PendingCopy> to_host_async(void* dst, const Tensor& src) override {
    return copy_async(dst, src.ptr, src.bytes(), cudaMemcpyDeviceToHost);
  }
  std::unique_ptr<PendingCopy> from_host_async(Tensor dst, const void* src) override {
    return copy_async(dst.ptr, src, dst.bytes(), cudaMemcpyHostToDevice);
  }
  void to_host(void* dst, const Tensor& src) override {
    if (src.bytes() == 0) return;
    LCT_CUDA_CHECK(cudaMemcpyAsync(dst, src.ptr, src.bytes(), cudaMemcpyDeviceToHost, stream_));
    LCT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void from_host(Tensor dst, const void* src) override {
    if (dst.bytes() == 0) return;
    LCT_CUDA_CHECK(cudaMemcpyAsync(dst.ptr, src, dst.bytes(), cudaMemcpyHostToDevice, stream_));
    LCT_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the caller may reuse `src` at once
  }
  void zero(Tensor t) override {
    if (t.bytes()) LCT_CUDA_CHECK(cudaMemsetAsync(t.ptr, 0, t.bytes(), stream_));
  }
  void convert(Tensor dst, const Tensor& src) override {
    LCT_CHECK(dst.numel() == src.numel(), "convert size ", dst.shape_str(), " vs ", src.shape_str());
    if (dst.ptr == src.ptr && dst.dtype == src.dtype) return;
    if (dst.dtype == src.dtype) {
      if (src.bytes())
        LCT_CUDA_CHECK(cudaMemcpyAsync(dst.ptr, src.ptr, src.bytes(), cudaMemcpyDeviceToDevice, stream_));
      return;
    }
    LCT_CHECK(dst.ptr != src.ptr, "convert in place between dtypes");
    cuda::convert(dst.ptr, dst.dtype, src.ptr, src.dtype, src.numel(), stream_);
  }
  void synchronize() override { LCT_CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  MemoryUse device_memory() const override { return ledger_.use(); }
  int64_t device_used_bytes() const override {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
      cudaGetLastError();
      return -1;
    }
    return int64_t(total_b - free_b);
  }
  MemoryUse host_memory() const override { return host_ledger_.use(); }

  // ---- embedding -------------------------------------------------------------------------------
  void embedding_forward(Tensor out, const Tensor& tokens, const Tensor& wte, int64_t vocab_begin) override {
    const int64_t N = tokens.numel(), C = wte.cols();
    LCT_CHECK(out.numel() == N * C, "embedding out ", out.shape_str());
    want(out, DType::BF16, "embedding out");
    want(wte, DType::BF16, "embedding wte");
    want(tokens, DType::I32, "tokens");
    cuda::embedding_forward(B(out), I(tokens), B(wte), N, C, vocab_begin, wte.rows(), stream_);
  }
  void embedding_backward(Tensor dwte, const Tensor& dout, const Tensor& tokens, int64_t vocab_begin) override {
    const int64_t N = tokens.numel(), C = dwte.cols();
    LCT_CHECK(dout.numel() == N * C, "embedding dout ", dout.shape_str());
    want(dwte, DType::F32, "embedding dwte");
    want(dout, DType::BF16, "embedding dout");
    want(tokens, DType::I32, "tokens");
    cuda::embedding_backward(F(dwte), B(dout), I(tokens), N, C, vocab_begin, dwte.rows(), stream_);
  }

  // ---- RMSNorm ---------------------------------------------------------------------------------
  void rmsnorm_forward(Tensor y, Tensor rstd, const Tensor& x, const Tensor& w, double eps) override {
    const int64_t C = w.numel(), N = x.numel() / std::max<int64_t>(C, 1);
    LCT_CHECK(x.cols() == C && y.numel() == x.numel() && rstd.numel() == N, "rmsnorm shapes");
    want(y, DType::BF16, "rmsnorm y");
    want(x, DType::BF16, "rmsnorm x");
    want(w, DType::BF16, "rmsnorm w");
    want(rstd, DType::F32, "rmsnorm rstd");
    cuda::rmsnorm_forward(B(y), F(rstd), B(x), B(w), N, C, float(eps), stream_);
  }
  void rmsnorm_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                        const Tensor& rstd) override {
    const int64_t C = w.numel(), N = x.numel() / std::max<int64_t>(C, 1);
    LCT_CHECK(dx.numel() == x.numel() && dy.numel() == x.numel() && dw.numel() == C && rstd.numel() == N,
              "rmsnorm_backward shapes");
    want(dx, DType::BF16, "rmsnorm dx");
    want(dy, DType::BF16, "rmsnorm dy");
    want(x, DType::BF16, "rmsnorm x");
    want(w, DType::BF16, "rmsnorm w");
    want(dw, DType::F32, "rmsnorm dw");
    want(rstd, DType::F32, "rmsnorm rstd");
    cuda::rmsnorm_backward(B(dx), F(dw), B(dy), B(x), B(w), F(rstd), N, C, num_sms_, stream_);
  }

  // ---- linear ----------------------------------------------------------------------------------
  void matmul_forward(Tensor y, const Tensor& x, const Tensor& w, bool accumulate) override {
    const int64_t K = w.cols(), M = w.rows(), N = x.numel() / std::max<int64_t>(K, 1);
    LCT_CHECK(x.cols() == K && y.numel() == N * M, "matmul shapes x", x.shape_str(), " w", w.shape_str(), " y",
              y.shape_str());
    want(x, DType::BF16, "matmul x");
    want(w, DType::BF16, "matmul w");
    want_float(y, "matmul y");
    gemm_->rowmajor(N, M, K, x.ptr, x.dtype, false, w.ptr, w.dtype, true, y.ptr, y.dtype, 1.0f,
                    accumulate ? 1.0f : 0.0f);
  }
  void matmul_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                       bool accumulate_dx) override {
    const int64_t K = w.cols(), M = w.rows(), N = x.numel() / std::max<int64_t>(K, 1);
    LCT_CHECK(dy.numel() == N * M && (dx.empty() || dx.numel() == N * K) && (dw.empty() || dw.numel() == M * K),
              "matmul_backward shapes");
    want(dy, DType::BF16, "matmul dy");
    if (!dx.empty()) {
      want(w, DType::BF16, "matmul w");
      want_float(dx, "matmul dx");
      // dx[N, K] = dy[N, M] W[M, K]
      gemm_->rowmajor(N, K, M, dy.ptr, dy.dtype, false, w.ptr, w.dtype, false, dx.ptr, dx.dtype, 1.0f,
                      accumulate_dx ? 1.0f : 0.0f);
    }
    if (!dw.empty()) {
      want(x, DType::BF16, "matmul x");
      want(dw, DType::F32, "matmul dw");
      // dw[M, K] += dy^T x
      gemm_->rowmajor(M, K, N, dy.ptr, dy.dtype, true, x.ptr, x.dtype, false, dw.ptr, dw.dtype, 1.0f, 1.0f);
    }
  }

  // ---- RoPE ------------------------------------------------------------------------------------
  void rope_forward(Tensor x, const Tensor& cos, const Tensor& sin) override { rope(x, cos, sin, false); }
  void rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin) override { rope(dx, cos, sin, true); }

  // ---- attention -------------------------------------------------------------------------------
  using Ops::attention_forward;
  using Ops::attention_backward;
  void attention_forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v,
                         const AttnMask& m) override {
    const cuda::AttnDims d = dims_of(q, k, v);
    const cuda::AttnPositions p = positions_of(m, d);
    LCT_CHECK(same_shape(out, q) && lse.numel() == d.B * d.Hq * d.Tq, "attention out/lse shapes");
    want(out, DType::F32, "attention out");
    want(lse, DType::F32, "attention lse");
    if (cudnn_) {
      cudnn_check(p);
      cudnn_->forward(out, lse, q, k, v, m.qpos, m.kpos);
      return;
    }
    int32_t* bounds = static_cast<int32_t*>(bounds_.get(sizeof(int32_t) * cuda::attention_bounds_ints(d, p), stream_));
    cuda::attention_forward(F(out), F(lse), B(q), B(k), B(v), p, d, bounds, stream_);
  }
  void attention_merge(Tensor out, Tensor lse, const Tensor& out_b, const Tensor& lse_b) override {
    LCT_CHECK(out.ndim == 4 && same_shape(out, out_b) && lse.numel() == lse_b.numel() &&
                  lse.numel() == out.dim(0) * out.dim(1) * out.dim(2),
              "merge shapes");
    want(out, DType::F32, "merge out");
    want(lse, DType::F32, "merge lse");
    want(lse_b, DType::F32, "merge lse_b");
    want_float(out_b, "merge out_b");
    cuda::attention_merge(F(out), F(lse), out_b.ptr, out_b.dtype, F(lse_b), out.dim(0), out.dim(1), 0, out.dim(1),
                          out.dim(2), out.dim(3), stream_);
  }
  void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q, const Tensor& k,
                          const Tensor& v, const AttnMask& m, const Tensor& out, const Tensor& lse) override {
    const cuda::AttnDims d = dims_of(q, k, v);
    const cuda::AttnPositions p = positions_of(m, d);
    LCT_CHECK(same_shape(dq, q) && same_shape(dk, k) && same_shape(dv, v) && same_shape(dout, q) &&
                  same_shape(out, q) && lse.numel() == d.B * d.Hq * d.Tq,
              "attention_backward shapes");
    want(dq, DType::F32, "attention dq");
    want(dk, DType::F32, "attention dk");
    want(dv, DType::F32, "attention dv");
    want(dout, DType::BF16, "attention dout");
    want(out, DType::F32, "attention out");
    want(lse, DType::F32, "attention lse");
    if (cudnn_) {
      cudnn_check(p);
      cudnn_->backward(dq, dk, dv, dout, q, k, v, m.qpos, m.kpos, out, lse);
      return;
    }
    int32_t* bounds = static_cast<int32_t*>(bounds_.get(sizeof(int32_t) * cuda::attention_bounds_ints(d, p), stream_));
    float* delta = static_cast<float*>(delta_.get(sizeof(float) * cuda::attention_delta_floats(d), stream_));
    cuda::attention_backward(F(dq), F(dk), F(dv), B(dout), B(q), B(k), B(v), p, F(out), F(lse), d, bounds, delta,
                             stream_);
  }

  // ---- SwiGLU, residual ------------------------------------------------------------------------
  void swiglu_forward(Tensor h, const Tensor& gate, const Tensor& up) override {
    LCT_CHECK(h.numel() == gate.numel() && up.numel() == gate.numel(), "swiglu shapes");
    want(h, DType::BF16, "swiglu h");
    want(gate, DType::BF16, "swiglu gate");
    want(up, DType::BF16, "swiglu up");
    cuda::swiglu_forward(B(h), B(gate), B(up), h.numel(), stream_);
  }
  void swiglu_backward(Tensor dgate, Tensor dup, const Tensor& dh, const Tensor& gate, const Tensor& up) override {
    LCT_CHECK(dgate.numel() == gate.numel() && dup.numel() == up.numel() && dh.numel() == gate.numel(),
              "swiglu_backward shapes");
    for (const Tensor* t : std::initializer_list<const Tensor*>{&dgate, &dup, &dh, &gate, &up}) want(*t, DType::BF16, "swiglu tensors");
    cuda::swiglu_backward(B(dgate), B(dup), B(dh), B(gate), B(up), gate.numel(), stream_);
  }
  void add_forward(Tensor y, const Tensor& a, const Tensor& b) override {
    LCT_CHECK(y.numel() == a.numel() && b.numel() == a.numel(), "add shapes");
    for (const Tensor* t : std::initializer_list<const Tensor*>{&y, &a, &b}) want(*t, DType::BF16, "add tensors");
    cuda::add_forward(B(y), B(a), B(b), y.numel(), stream_);
  }
  void add_backward(Tensor da, Tensor db, const Tensor& dy) override {
    LCT_CHECK(da.numel() == dy.numel() && db.numel() == dy.numel(), "add_backward shapes");
    for (const Tensor* t : std::initializer_list<const Tensor*>{&da, &db, &dy}) want(*t, DType::BF16, "add_backward tensors");
    cuda::add_backward(B(da), B(db), B(dy), dy.numel(), stream_);
  }

  // ---- LM head + cross-entropy -----------------------------------------------------------------
  void lmhead_loss_forward(Tensor stats, const Tensor& x, const Tensor& w, const Tensor& targets,
                           int64_t vocab_begin, int64_t vocab_valid) override {
    const int64_t C = w.cols(), V = w.rows(), N = targets.numel(), Vv = vocab_valid < 0 ? V : std::min(vocab_valid, V);
    LCT_CHECK(x.numel() == N * C && stats.numel() == N * 3, "lmhead shapes");
    want(stats, DType::F32, "lmhead stats");
    want(x, DType::BF16, "lmhead x");
    want(w, DType::BF16, "lmhead w");
    want(targets, DType::I32, "targets");
    const int64_t chunk = lmhead_chunk_rows(N, V);
    float* logits = static_cast<float*>(logits_.get(sizeof(float) * size_t(chunk * V), stream_));
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
      const int64_t nc = std::min(chunk, N - n0);
      gemm_->rowmajor(nc, V, C, B(x) + n0 * C, DType::BF16, false, w.ptr, DType::BF16, true, logits, DType::F32,
                      1.0f, 0.0f);
      cuda::lmhead_row_stats(F(stats) + n0 * 3, logits, I(targets) + n0, nc, V, Vv, vocab_begin, stream_);
    }
  }
  double lmhead_loss_combine(Tensor lse, const Tensor& stats_all, const Tensor& targets) override {
    const int64_t N = targets.numel(), parts = N ? stats_all.numel() / (N * 3) : 0;
    LCT_CHECK(parts * N * 3 == stats_all.numel() && lse.numel() == N, "lmhead_loss_combine shapes");
    want(lse, DType::F32, "lmhead lse");
    want(stats_all, DType::F32, "lmhead stats_all");
    want(targets, DType::I32, "targets");
    if (N == 0) return 0.0;
    const int64_t maxp = cuda::lmhead_combine_max_partials(N);
    double* dpart = static_cast<double*>(partials_.get(sizeof(double) * size_t(maxp), stream_));
    const int np = cuda::lmhead_combine(F(lse), dpart, F(stats_all), I(targets), parts, N, stream_);
    return sum_partials(dpart, np);
  }
  void lmhead_loss_backward(Tensor dx, Tensor dw, const Tensor& x, const Tensor& w, const Tensor& targets,
                            const Tensor& lse, double scale, int64_t vocab_begin, int64_t vocab_valid) override {
    const int64_t C = w.cols(), V = w.rows(), N = targets.numel(), Vv = vocab_valid < 0 ? V : std::min(vocab_valid, V);
    LCT_CHECK(x.numel() == N * C && dx.numel() == N * C && dw.numel() == V * C && lse.numel() == N,
              "lmhead_loss_backward shapes");
    want(dx, DType::BF16, "lmhead dx");
    want(dw, DType::F32, "lmhead dw");
    want(x, DType::BF16, "lmhead x");
    want(w, DType::BF16, "lmhead w");
    want(targets, DType::I32, "targets");
    want(lse, DType::F32, "lmhead lse");
    const int64_t chunk = lmhead_chunk_rows(N, V);
    float* logits = static_cast<float*>(logits_.get(sizeof(float) * size_t(chunk * V), stream_));
    bf16* dlogits = static_cast<bf16*>(dlogits_.get(sizeof(bf16) * size_t(chunk * V), stream_));
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
      const int64_t nc = std::min(chunk, N - n0);
      const bf16* xc = B(x) + n0 * C;
      gemm_->rowmajor(nc, V, C, xc, DType::BF16, false, w.ptr, DType::BF16, true, logits, DType::F32, 1.0f, 0.0f);
      cuda::lmhead_dlogits(dlogits, logits, I(targets) + n0, F(lse) + n0, float(scale), nc, V, Vv, vocab_begin,
                           stream_);
      // dx[nc, C] = dlogits W;  dw[V, C] += dlogits^T x
      gemm_->rowmajor(nc, C, V, dlogits, DType::BF16, false, w.ptr, DType::BF16, false, B(dx) + n0 * C, DType::BF16,
                      1.0f, 0.0f);
      gemm_->rowmajor(V, C, nc, dlogits, DType::BF16, true, xc, DType::BF16, false, dw.ptr, DType::F32, 1.0f, 1.0f);
    }
  }

  // ---- optimizer and reductions ----------------------------------------------------------------
  void adamw_update(Tensor param, Tensor m, Tensor v, const Tensor& grad, const AdamWArgs& a) override {
    const int64_t n = param.numel();
    LCT_CHECK(m.numel() == n && v.numel() == n && grad.numel() == n, "adamw sizes");
    for (const Tensor* t : std::initializer_list<const Tensor*>{&param, &m, &v, &grad}) want(*t, DType::F32, "adamw vectors");
    cuda::AdamWScalars s{float(a.lr),
                         float(a.beta1),
                         float(a.beta2),
                         float(1.0 - a.beta1),
                         float(1.0 - a.beta2),
                         float(a.eps),
                         float(a.weight_decay),
                         float(1.0 - std::pow(a.beta1, double(a.step))),
                         float(1.0 - std::pow(a.beta2, double(a.step))),
                         float(a.grad_scale)};
    cuda::adamw_update(F(param), F(m), F(v), F(grad), n, s, stream_);
  }
  void sgd_update(Tensor param, const Tensor& grad, double lr, double wd, double grad_scale) override {
    LCT_CHECK(grad.numel() == param.numel(), "sgd sizes");
    want(param, DType::F32, "sgd param");
    want(grad, DType::F32, "sgd grad");
    cuda::sgd_update(F(param), F(grad), param.numel(), float(lr), float(wd), float(grad_scale), stream_);
  }
  void permute_copy(Tensor dst, const Tensor& src, const CopyMap& m, bool accumulate) override {
    check_permute_copy(dst, src, m);
    want_float(dst, "permute_copy dst");
    cuda::CopyDims d;
    for (int k = 0; k < 5; ++k) d.dims[k] = m.dims[k], d.strides[k] = m.strides[k];
    cuda::permute_copy(dst.ptr, src.ptr, dst.dtype, d, accumulate, stream_);
  }
  double sum_squares(const Tensor& x) override {
    want_float(x, "sum_squares x");
    if (x.numel() == 0) return 0.0;
    double* dpart =
        static_cast<double*>(partials_.get(sizeof(double) * size_t(cuda::sum_squares_max_partials()), stream_));
    const int np = cuda::sum_squares(dpart, x.ptr, x.dtype, x.numel(), stream_);
    return sum_partials(dpart, np);
  }
  void scale(Tensor x, double a) override {
    want_float(x, "scale x");
    cuda::scale(x.ptr, x.dtype, x.numel(), a, stream_);
  }
  void axpy(Tensor y, double a, const Tensor& x) override {
    LCT_CHECK(y.numel() == x.numel(), "axpy sizes");
    want_float(y, "axpy y");
    want_float(x, "axpy x");
    cuda::axpy(y.ptr, y.dtype, a, x.ptr, x.dtype, y.numel(), stream_);
  }

 private:
  static constexpr int64_t kMaxPartials = 1 << 16;

  // The copy starts when the compute issued so far is done (the source is produced, the
  // destination no longer read) and runs on copy_stream_, beside later compute.
  std::unique_ptr<PendingCopy> copy_async(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    cudaEvent_t ready = nullptr, done = nullptr;
    LCT_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    LCT_CUDA_CHECK(cudaEventRecord(ready, stream_));
    LCT_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, ready, 0));
    LCT_CUDA_CHECK(cudaEventDestroy(ready));  // released once the wait is satisfied
    if (bytes) LCT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, copy_stream_));
    LCT_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    LCT_CUDA_CHECK(cudaEventRecord(done, copy_stream_));
    return std::make_unique<CudaCopy>(stream_, done, kind == cudaMemcpyDeviceToHost);
  }

  // Copies per-block partial sums to the host and adds them in a fixed order.
  double sum_partials(const double* dpart, int np) {
    double total = 0;
    for (int done = 0; done < np; done += int(kMaxPartials)) {
      const int cnt = std::min<int>(np - done, int(kMaxPartials));
      LCT_CUDA_CHECK(cudaMemcpyAsync(host_partials_, dpart + done, sizeof(double) * size_t(cnt),
                                     cudaMemcpyDeviceToHost, stream_));
      LCT_CUDA_CHECK(cudaStreamSynchronize(stream_));
      for (int i = 0; i < cnt; ++i) total += host_partials_[i];
    }
    return total;
  }

  void rope(Tensor x, const Tensor& cos, const Tensor& sin, bool transpose) {
    const int64_t half = x.ndim == 4 ? x.dim(3) / 2 : 0;
    LCT_CHECK(x.ndim == 4 && x.dim(3) % 2 == 0 && sin.numel() == cos.numel() &&
                  (cos.numel() == x.dim(1) * half || cos.numel() == x.dim(0) * x.dim(1) * half),
              "rope shapes x", x.shape_str(), " cos", cos.shape_str());
    want(x, DType::BF16, "rope x");
    want(cos, DType::F32, "rope cos");
    want(sin, DType::F32, "rope sin");
    // A table per sequence ([B, T, D/2]) is a table of B * T rows.
    cuda::rope_apply(B(x), F(cos), F(sin), x.dim(0), x.dim(1), x.dim(2), x.dim(3), cos.numel() / half, transpose,
                     stream_);
  }

  // cuDNN masks by index ranges (the positions are split into runs on the host): it takes no
  // document starts and no per-sequence positions (no ragged offsets here), so
  // data.reset_attention_mask is refused with an input error (the deck check says so first).
  static void cudnn_check(const cuda::AttnPositions& p) {
    if (p.qstart || p.q_stride || p.k_stride)
      throw InputError("model.attention_impl = cudnn does not mask by document (data.reset_attention_mask = true, "
                       "parallel.cp_sharding = doc_zigzag); use model.attention_impl = own");
  }
  // Positions of a mask: each tensor one row shared by the batch ([T]) or one per row ([B, T]).
  static cuda::AttnPositions positions_of(const AttnMask& m, const cuda::AttnDims& d) {
    auto stride = [&](const Tensor& t, int64_t T, const char* what) -> int64_t {
      want(t, DType::I32, what);
      LCT_CHECK(t.numel() == T || t.numel() == d.B * T, "attention ", what, " has ", t.numel(), " positions for ",
                d.B, " rows of ", T);
      return t.numel() == T ? 0 : T;
    };
    cuda::AttnPositions p;
    p.qpos = I(m.qpos);
    p.kpos = I(m.kpos);
    p.q_stride = stride(m.qpos, d.Tq, "attention qpos");
    p.k_stride = stride(m.kpos, d.Tk, "attention kpos");
    if (!m.q_start.empty()) {
      LCT_CHECK(stride(m.q_start, d.Tq, "attention q_start") == p.q_stride, "attention q_start and qpos differ in rows");
      p.qstart = I(m.q_start);
    }
    return p;
  }

  static cuda::AttnDims dims_of(const Tensor& q, const Tensor& k, const Tensor& v) {
    LCT_CHECK(q.ndim == 4 && k.ndim == 4 && same_shape(k, v), "attention wants [B, T, H, D]: q", q.shape_str(),
              " k", k.shape_str(), " v", v.shape_str());
    cuda::AttnDims d{q.dim(0), q.dim(1), k.dim(1), q.dim(2), k.dim(2), q.dim(3)};
    LCT_CHECK(k.dim(0) == d.B && k.dim(3) == d.D && d.Hkv > 0 && d.Hq % d.Hkv == 0, "attention q/k mismatch");
    want(q, DType::BF16, "attention q");
    want(k, DType::BF16, "attention k");
    want(v, DType::BF16, "attention v");
    if (!cuda::attention_head_dim_supported(d.D))
      throw InputError(str("attention head dim ", d.D, " is not supported by the cuda backend's kernels "
                           "(16, 32, 64 or 128); use attention_impl = cudnn or run.device = cpu"));
    for (const Tensor* t : std::initializer_list<const Tensor*>{&q, &k, &v})
      LCT_CHECK((reinterpret_cast<uintptr_t>(t->ptr) & 15u) == 0, "attention q/k/v must be 16-byte aligned");
    return d;
  }

  int device_;
  AttentionImpl impl_;
  int num_sms_ = 1;
  std::string device_name_;
  cudaStream_t stream_ = nullptr, copy_stream_ = nullptr;
  std::unique_ptr<cuda::Gemm> gemm_;
  std::unique_ptr<cuda::CudnnAttention> cudnn_;
  Scratch bounds_, delta_, logits_, dlogits_, partials_;
  double* host_partials_ = nullptr;
  AllocationLedger ledger_, host_ledger_;
};

CudaOps& as_cuda(Ops& ops) {
  auto* c = dynamic_cast<CudaOps*>(&ops);
  LCT_CHECK(c != nullptr, "backend '", ops.name(), "' is not the cuda backend");
  return *c;
}

}  // namespace

AttentionImpl parse_attention_impl(const std::string& name) {
  if (name == "own") return AttentionImpl::Own;
  if (name == "cudnn") return AttentionImpl::Cudnn;
  throw InputError(str("unknown model.attention_impl '", name, "' (takes own or cudnn)"));
}

const char* attention_impl_name(AttentionImpl impl) { return impl == AttentionImpl::Own ? "own" : "cudnn"; }

std::unique_ptr<Ops> make_cuda_ops(int device_index, AttentionImpl impl) {
  std::string why;
  if (!cuda_available(&why)) throw InputError(str("run.device = cuda, but no GPU can be used: ", why));
  int n = 0;
  LCT_CUDA_CHECK(cudaGetDeviceCount(&n));
  int dev = device_index;
  if (dev < 0 || dev >= n) {
    if (n != 1)
      throw InputError(str("cuda device index ", device_index, " but ", n, " devices are visible"));
    dev = 0;  // one GPU per task: the one visible device, whatever the rank
  }
  return std::make_unique<CudaOps>(dev, impl);
}

std::unique_ptr<Ops> make_cuda_ops(int device_index) { return make_cuda_ops(device_index, AttentionImpl::Own); }

cudaStream_t cuda_stream_of(Ops& ops) { return as_cuda(ops).stream(); }
int64_t cuda_workspace_bytes(Ops& ops) { return as_cuda(ops).workspace_bytes(); }
AttentionImpl cuda_attention_impl(Ops& ops) { return as_cuda(ops).attention_impl(); }

}  // namespace lct
