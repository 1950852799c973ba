// The cpu backend: binds the Ops interface to the templated kernels in this folder. The same
// templates run in float (training) and double (gradient checks in the tests).
#include <cstdlib>
#include <cstring>

#include "ops/allocation_ledger.h"
#include "ops/cpu/attention.h"
#include "ops/cpu/elementwise.h"
#include "ops/cpu/embedding.h"
#include "ops/cpu/lmhead_loss.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/rmsnorm.h"
#include "ops/cpu/rope.h"
#include "ops/cpu/swiglu.h"
#include "ops/ops.h"

namespace lct {
namespace {

template <class T>
class CpuOps final : public Ops {
 public:
  explicit CpuOps(int attn_block) : blk_(attn_block) { LCT_CHECK(blk_ >= 1, "attention block"); }
  ~CpuOps() override {
    for (void* p : ledger_.release_all()) std::free(p);
    for (void* p : host_ledger_.release_all()) std::free(p);
  }

  std::string name() const override { return dtype_of<T>() == DType::F64 ? "cpu-f64" : "cpu"; }
  DType act_dtype() const override { return dtype_of<T>(); }
  DType acc_dtype() const override { return dtype_of<T>(); }

  // "Device" and host memory are both host memory here; they are counted apart so that what
  // offload moves out of the device pool is measured on this backend too.
  void* alloc(size_t bytes, Mem kind) override { return allocate(ledger_, bytes, kind); }
  void free(void* p) override {
    if (!p) return;
    ledger_.remove(p);
    std::free(p);
  }
  void* alloc_host(size_t bytes, Mem kind) override { return allocate(host_ledger_, bytes, kind); }
  void free_host(void* p) override {
    if (!p) return;
    host_ledger_.remove(p);
    std::free(p);
  }
  void to_host(void* dst, const Tensor& src) override { std::memcpy(dst, src.ptr, src.bytes()); }
  void from_host(Tensor dst, const void* src) override { std::memcpy(dst.ptr, src, dst.bytes()); }
  void zero(Tensor t) override { std::memset(t.ptr, 0, t.bytes()); }
  void convert(Tensor dst, const Tensor& src) override {
    LCT_CHECK(dst.numel() == src.numel(), "convert size");
    if (dst.ptr == src.ptr) return;
    if (dst.dtype == src.dtype) {
      std::memcpy(dst.ptr, src.ptr, src.bytes());
      return;
    }
    const int64_t n = src.numel();
    auto load = [&](int64_t i) -> double {
      switch (src.dtype) {
        case DType::F32: return static_cast<const float*>(src.ptr)[i];
        case DType::F64: return static_cast<const double*>(src.ptr)[i];
        case DType::BF16: return bf16_to_float(static_cast<const uint16_t*>(src.ptr)[i]);
        case DType::I32: return static_cast<const int32_t*>(src.ptr)[i];
      }
      return 0;
    };
    for (int64_t i = 0; i < n; ++i) {
      double x = load(i);
      switch (dst.dtype) {
        case DType::F32: static_cast<float*>(dst.ptr)[i] = float(x); break;
        case DType::F64: static_cast<double*>(dst.ptr)[i] = x; break;
        case DType::BF16: static_cast<uint16_t*>(dst.ptr)[i] = float_to_bf16(float(x)); break;
        case DType::I32: static_cast<int32_t*>(dst.ptr)[i] = int32_t(x); break;
      }
    }
  }
  void synchronize() override {}
  MemoryUse device_memory() const override { return ledger_.use(); }
  MemoryUse host_memory() const override { return host_ledger_.use(); }

  void embedding_forward(Tensor out, const Tensor& tokens, const Tensor& wte, int64_t vocab_begin) override {
    const int64_t N = tokens.numel(), C = wte.cols();
    LCT_CHECK(out.numel() == N * C, "embedding out ", out.shape_str());
    cpu::embedding_forward(P(out), tokens.data<int32_t>(), P(wte), N, C, vocab_begin, wte.rows());
  }
  void embedding_backward(Tensor dwte, const Tensor& dout, const Tensor& tokens, int64_t vocab_begin) override {
    const int64_t N = tokens.numel(), C = dwte.cols();
    LCT_CHECK(dout.numel() == N * C, "embedding dout ", dout.shape_str());
    cpu::embedding_backward(P(dwte), P(dout), tokens.data<int32_t>(), N, C, vocab_begin, dwte.rows());
  }

  void rmsnorm_forward(Tensor y, Tensor rstd, const Tensor& x, const Tensor& w, double eps) override {
    const int64_t C = w.numel(), N = x.numel() / C;
    LCT_CHECK(x.cols() == C && y.numel() == x.numel() && rstd.numel() == N, "rmsnorm shapes");
    cpu::rmsnorm_forward(P(y), P(rstd), P(x), P(w), N, C, eps);
  }
  void rmsnorm_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                        const Tensor& rstd) override {
    const int64_t C = w.numel(), N = x.numel() / C;
    LCT_CHECK(dx.numel() == x.numel() && dy.numel() == x.numel() && dw.numel() == C, "rmsnorm_backward shapes");
    cpu::rmsnorm_backward(P(dx), P(dw), P(dy), P(x), P(w), P(rstd), N, C);
  }

  void matmul_forward(Tensor y, const Tensor& x, const Tensor& w, bool accumulate) override {
    const int64_t K = w.cols(), M = w.rows(), N = x.numel() / K;
    LCT_CHECK(x.cols() == K && y.numel() == N * M, "matmul shapes x", x.shape_str(), " w", w.shape_str(), " y",
              y.shape_str());
    cpu::matmul_forward(P(y), P(x), P(w), N, K, M, accumulate);
  }
  void matmul_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                       bool accumulate_dx) override {
    const int64_t K = w.cols(), M = w.rows(), N = x.numel() / K;
    LCT_CHECK(dy.numel() == N * M && (dx.empty() || dx.numel() == N * K) && (dw.empty() || dw.numel() == M * K),
              "matmul_backward shapes");
    cpu::matmul_backward(dx.empty() ? nullptr : P(dx), dw.empty() ? nullptr : P(dw), P(dy), P(x), P(w), N, K, M,
                         accumulate_dx);
  }

  void rope_forward(Tensor x, const Tensor& cos, const Tensor& sin) override { rope(x, cos, sin, false); }
  void rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin) override { rope(dx, cos, sin, true); }

  using Ops::attention_forward;
  using Ops::attention_backward;
  void attention_forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v,
                         const AttnMask& m) override {
    cpu::AttnShape s = shape_of(q, k, v);
    LCT_CHECK(same_shape(out, q) && lse.numel() == s.B * s.Hq * s.Tq, "attention out/lse shapes");
    cpu::attention_forward(P(out), P(lse), P(q), P(k), P(v), pos_of(m, s), s, blk_);
  }
  void attention_merge(Tensor out, Tensor lse, const Tensor& out_b, const Tensor& lse_b) override {
    LCT_CHECK(out.ndim == 4 && same_shape(out, out_b) && lse.numel() == lse_b.numel(), "merge shapes");
    cpu::attention_merge(P(out), P(lse), P(out_b), P(lse_b), out.dim(0), out.dim(1), out.dim(2), out.dim(3));
  }
  void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q, const Tensor& k,
                          const Tensor& v, const AttnMask& m, const Tensor& out, const Tensor& lse) override {
    cpu::AttnShape s = shape_of(q, k, v);
    LCT_CHECK(same_shape(dq, q) && same_shape(dk, k) && same_shape(dv, v) && same_shape(dout, q) &&
                  same_shape(out, q) && lse.numel() == s.B * s.Hq * s.Tq,
              "attention_backward shapes");
    cpu::attention_backward(P(dq), P(dk), P(dv), P(dout), P(q), P(k), P(v), pos_of(m, s), P(out), P(lse), s, blk_);
  }

  void swiglu_forward(Tensor h, const Tensor& gate, const Tensor& up) override {
    LCT_CHECK(h.numel() == gate.numel() && up.numel() == gate.numel(), "swiglu shapes");
    cpu::swiglu_forward(P(h), P(gate), P(up), h.numel());
  }
  void swiglu_backward(Tensor dgate, Tensor dup, const Tensor& dh, const Tensor& gate, const Tensor& up) override {
    LCT_CHECK(dgate.numel() == gate.numel() && dup.numel() == up.numel() && dh.numel() == gate.numel(),
              "swiglu_backward shapes");
    cpu::swiglu_backward(P(dgate), P(dup), P(dh), P(gate), P(up), gate.numel());
  }

  void add_forward(Tensor y, const Tensor& a, const Tensor& b) override {
    LCT_CHECK(y.numel() == a.numel() && b.numel() == a.numel(), "add shapes");
    cpu::add_forward(P(y), P(a), P(b), y.numel());
  }
  void add_backward(Tensor da, Tensor db, const Tensor& dy) override {
    LCT_CHECK(da.numel() == dy.numel() && db.numel() == dy.numel(), "add_backward shapes");
    cpu::add_backward(P(da), P(db), P(dy), dy.numel());
  }

  void lmhead_loss_forward(Tensor stats, const Tensor& x, const Tensor& w, const Tensor& targets,
                           int64_t vocab_begin, int64_t vocab_valid) override {
    const int64_t C = w.cols(), V = vocab_valid < 0 ? w.rows() : std::min(vocab_valid, w.rows()), N = targets.numel();
    LCT_CHECK(x.numel() == N * C && stats.numel() == N * 3, "lmhead shapes");
    cpu::lmhead_loss_forward(P(stats), P(x), P(w), targets.data<int32_t>(), N, C, V, vocab_begin);
  }
  double lmhead_loss_combine(Tensor lse, const Tensor& stats_all, const Tensor& targets) override {
    const int64_t N = targets.numel(), parts = stats_all.numel() / (N * 3);
    LCT_CHECK(parts * N * 3 == stats_all.numel() && lse.numel() == N, "lmhead_loss_combine shapes");
    return cpu::lmhead_loss_combine(P(lse), P(stats_all), targets.data<int32_t>(), parts, N);
  }
  void lmhead_loss_backward(Tensor dx, Tensor dw, const Tensor& x, const Tensor& w, const Tensor& targets,
                            const Tensor& lse, double scale, int64_t vocab_begin, int64_t vocab_valid) override {
    const int64_t C = w.cols(), V = vocab_valid < 0 ? w.rows() : std::min(vocab_valid, w.rows()), N = targets.numel();
    LCT_CHECK(x.numel() == N * C && dx.numel() == N * C && dw.numel() == w.numel() && lse.numel() == N,
              "lmhead_loss_backward shapes");
    cpu::lmhead_loss_backward(P(dx), P(dw), P(x), P(w), targets.data<int32_t>(), P(lse), scale, N, C, V,
                              vocab_begin);
  }

  void adamw_update(Tensor param, Tensor m, Tensor v, const Tensor& grad, const AdamWArgs& a) override {
    const int64_t n = param.numel();
    LCT_CHECK(m.numel() == n && v.numel() == n && grad.numel() == n, "adamw sizes");
    cpu::adamw_update(P(param), P(m), P(v), P(grad), n, a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.step,
                      a.grad_scale);
  }
  void sgd_update(Tensor param, const Tensor& grad, double lr, double wd, double grad_scale) override {
    LCT_CHECK(grad.numel() == param.numel(), "sgd sizes");
    cpu::sgd_update(P(param), P(grad), param.numel(), lr, wd, grad_scale);
  }
  void permute_copy(Tensor dst, const Tensor& src, const CopyMap& m, bool accumulate) override {
    check_permute_copy(dst, src, m);
    cpu::permute_copy(P(dst), P(src), m.dims, m.strides, accumulate);
  }
  double sum_squares(const Tensor& x) override { return cpu::sum_squares(P(x), x.numel()); }
  void scale(Tensor x, double a) override { cpu::scale(P(x), x.numel(), a); }
  void axpy(Tensor y, double a, const Tensor& x) override {
    LCT_CHECK(y.numel() == x.numel(), "axpy sizes");
    cpu::axpy(P(y), a, P(x), y.numel());
  }

 private:
  static T* P(const Tensor& t) { return t.data<T>(); }

  static void* allocate(AllocationLedger& ledger, size_t bytes, Mem kind) {
    size_t padded = (bytes + 63) / 64 * 64;
    if (padded == 0) padded = 64;
    void* p = std::aligned_alloc(64, padded);
    if (!p) throw Error(kExitFailure, str("out of host memory allocating ", bytes, " bytes"));
    std::memset(p, 0, padded);
    ledger.add(p, padded, kind);
    return p;
  }

  void rope(Tensor x, const Tensor& cos, const Tensor& sin, bool transpose) {
    LCT_CHECK(x.ndim == 4 && sin.numel() == cos.numel() &&
                  (cos.numel() == x.dim(1) * x.dim(3) / 2 || cos.numel() == x.dim(0) * x.dim(1) * x.dim(3) / 2),
              "rope shapes x", x.shape_str(), " cos", cos.shape_str());
    const bool per_row = cos.numel() != x.dim(1) * x.dim(3) / 2;
    cpu::rope_apply(P(x), P(cos), P(sin), x.dim(0), x.dim(1), x.dim(2), x.dim(3), transpose, per_row);
  }

  static cpu::AttnShape shape_of(const Tensor& q, const Tensor& k, const Tensor& v) {
    LCT_CHECK(q.ndim == 4 && k.ndim == 4 && same_shape(k, v), "attention wants [B, T, H, D]: q", q.shape_str(),
              " k", k.shape_str(), " v", v.shape_str());
    cpu::AttnShape s{q.dim(0), q.dim(1), k.dim(1), q.dim(2), k.dim(2), q.dim(3)};
    LCT_CHECK(k.dim(0) == s.B && k.dim(3) == s.D && s.Hq % s.Hkv == 0, "attention q/k mismatch");
    return s;
  }
  // Positions of a mask: each tensor one row shared by the batch ([T]) or one per row ([B, T]).
  static cpu::AttnPos pos_of(const AttnMask& m, const cpu::AttnShape& s) {
    auto stride = [&](const Tensor& t, int64_t n, const char* what) -> int64_t {
      LCT_CHECK(t.dtype == DType::I32 && (t.numel() == n || t.numel() == s.B * n), "attention ", what, " has ",
                t.numel(), " positions for ", s.B, " rows of ", n);
      return t.numel() == n ? 0 : n;
    };
    cpu::AttnPos p;
    p.qpos = m.qpos.data<int32_t>();
    p.kpos = m.kpos.data<int32_t>();
    p.q_stride = stride(m.qpos, s.Tq, "qpos");
    p.k_stride = stride(m.kpos, s.Tk, "kpos");
    if (!m.q_start.empty()) {
      LCT_CHECK(stride(m.q_start, s.Tq, "q_start") == p.q_stride, "attention q_start and qpos differ in rows");
      p.qstart = m.q_start.data<int32_t>();
    }
    return p;
  }

  int blk_;
  AllocationLedger ledger_, host_ledger_;
};

}  // namespace

std::unique_ptr<Ops> make_cpu_ops(DType dtype, int attn_block) {
  switch (dtype) {
    case DType::F32: return std::make_unique<CpuOps<float>>(attn_block);
    case DType::F64: return std::make_unique<CpuOps<double>>(attn_block);
    default: throw InputError(str("the cpu backend computes in f32 or f64, not ", dtype_name(dtype)));
  }
}

}  // namespace lct
