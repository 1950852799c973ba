// An Ops decorator that times every call (wall clock, after synchronize) and counts calls, by op
// name: the per-op breakdown of a real training step without touching the model code.
#pragma once

#include <map>
#include <string>

#include "core/timer.h"
#include "ops/ops.h"

namespace lct::bench {

struct OpTime {
  double seconds = 0;
  int64_t calls = 0;
};

class TimedOps final : public Ops {
 public:
  explicit TimedOps(Ops& inner) : in_(inner) {}
  const std::map<std::string, OpTime>& times() const { return times_; }
  void reset() { times_.clear(); }

  std::string name() const override { return in_.name(); }
  DType act_dtype() const override { return in_.act_dtype(); }
  DType acc_dtype() const override { return in_.acc_dtype(); }
  void* alloc(size_t bytes, Mem kind) override { return in_.alloc(bytes, kind); }
  void free(void* p) override { in_.free(p); }
  void* alloc_host(size_t bytes, Mem kind) override { return in_.alloc_host(bytes, kind); }
  void free_host(void* p) override { in_.free_host(p); }
  void to_host(void* dst, const Tensor& src) override { in_.to_host(dst, src); }
  void from_host(Tensor dst, const void* src) override { in_.from_host(dst, src); }
  std::unique_ptr<PendingCopy> to_host_async(void* dst, const Tensor& src) override {
    return in_.to_host_async(dst, src);
  }
  std::unique_ptr<PendingCopy> from_host_async(Tensor dst, const void* src) override {
    return in_.from_host_async(dst, src);
  }
  void zero(Tensor t) override { timed("zero/convert/scale", [&] { in_.zero(t); }); }
  void convert(Tensor dst, const Tensor& src) override {
    timed("zero/convert/scale", [&] { in_.convert(dst, src); });
  }
  void synchronize() override { in_.synchronize(); }
  MemoryUse device_memory() const override { return in_.device_memory(); }
  MemoryUse host_memory() const override { return in_.host_memory(); }
  int64_t device_used_bytes() const override { return in_.device_used_bytes(); }

  void embedding_forward(Tensor out, const Tensor& tokens, const Tensor& wte, int64_t vb) override {
    timed("embedding", [&] { in_.embedding_forward(out, tokens, wte, vb); });
  }
  void embedding_backward(Tensor dwte, const Tensor& dout, const Tensor& tokens, int64_t vb) override {
    timed("embedding", [&] { in_.embedding_backward(dwte, dout, tokens, vb); });
  }
  void rmsnorm_forward(Tensor y, Tensor rstd, const Tensor& x, const Tensor& w, double eps) override {
    timed("rmsnorm fwd", [&] { in_.rmsnorm_forward(y, rstd, x, w, eps); });
  }
  void rmsnorm_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                        const Tensor& rstd) override {
    timed("rmsnorm bwd", [&] { in_.rmsnorm_backward(dx, dw, dy, x, w, rstd); });
  }
  void matmul_forward(Tensor y, const Tensor& x, const Tensor& w, bool acc) override {
    timed("linear fwd", [&] { in_.matmul_forward(y, x, w, acc); });
  }
  void matmul_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                       bool acc_dx) override {
    timed("linear bwd", [&] { in_.matmul_backward(dx, dw, dy, x, w, acc_dx); });
  }
  void rope_forward(Tensor x, const Tensor& c, const Tensor& s) override {
    timed("rope", [&] { in_.rope_forward(x, c, s); });
  }
  void rope_backward(Tensor dx, const Tensor& c, const Tensor& s) override {
    timed("rope", [&] { in_.rope_backward(dx, c, s); });
  }
  using Ops::attention_forward;
  using Ops::attention_backward;
  void attention_forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v,
                         const AttnMask& m) override {
    timed("attention fwd", [&] { in_.attention_forward(out, lse, q, k, v, m); });
  }
  void attention_merge(Tensor out, Tensor lse, const Tensor& ob, const Tensor& lb) override {
    timed("attention merge", [&] { in_.attention_merge(out, lse, ob, lb); });
  }
  void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q, const Tensor& k,
                          const Tensor& v, const AttnMask& m, const Tensor& out, const Tensor& lse) override {
    timed("attention bwd", [&] { in_.attention_backward(dq, dk, dv, dout, q, k, v, m, out, lse); });
  }
  void swiglu_forward(Tensor h, const Tensor& g, const Tensor& u) override {
    timed("swiglu fwd", [&] { in_.swiglu_forward(h, g, u); });
  }
  void swiglu_backward(Tensor dg, Tensor du, const Tensor& dh, const Tensor& g, const Tensor& u) override {
    timed("swiglu bwd", [&] { in_.swiglu_backward(dg, du, dh, g, u); });
  }
  void add_forward(Tensor y, const Tensor& a, const Tensor& b) override {
    timed("residual add", [&] { in_.add_forward(y, a, b); });
  }
  void add_backward(Tensor da, Tensor db, const Tensor& dy) override {
    timed("residual add", [&] { in_.add_backward(da, db, dy); });
  }
  void lmhead_loss_forward(Tensor stats, const Tensor& x, const Tensor& w, const Tensor& t, int64_t vb,
                           int64_t vv) override {
    timed("lm head + loss fwd", [&] { in_.lmhead_loss_forward(stats, x, w, t, vb, vv); });
  }
  double lmhead_loss_combine(Tensor lse, const Tensor& stats_all, const Tensor& t) override {
    double r = 0;
    timed("lm head + loss fwd", [&] { r = in_.lmhead_loss_combine(lse, stats_all, t); });
    return r;
  }
  void lmhead_loss_backward(Tensor dx, Tensor dw, const Tensor& x, const Tensor& w, const Tensor& t,
                            const Tensor& lse, double scale, int64_t vb, int64_t vv) override {
    timed("lm head + loss bwd", [&] { in_.lmhead_loss_backward(dx, dw, x, w, t, lse, scale, vb, vv); });
  }
  void adamw_update(Tensor p, Tensor m, Tensor v, const Tensor& g, const AdamWArgs& a) override {
    timed("optimizer", [&] { in_.adamw_update(p, m, v, g, a); });
  }
  void sgd_update(Tensor p, const Tensor& g, double lr, double wd, double gs) override {
    timed("optimizer", [&] { in_.sgd_update(p, g, lr, wd, gs); });
  }
  double sum_squares(const Tensor& x) override {
    double r = 0;
    timed("optimizer", [&] { r = in_.sum_squares(x); });
    return r;
  }
  void scale(Tensor x, double a) override { timed("zero/convert/scale", [&] { in_.scale(x, a); }); }
  void axpy(Tensor y, double a, const Tensor& x) override { timed("zero/convert/scale", [&] { in_.axpy(y, a, x); }); }
  void permute_copy(Tensor dst, const Tensor& src, const CopyMap& m, bool accumulate) override {
    timed("zero/convert/scale", [&] { in_.permute_copy(dst, src, m, accumulate); });
  }

 private:
  template <class F>
  void timed(const char* op, F&& f) {
    const double t0 = now_seconds();
    f();
    in_.synchronize();
    OpTime& t = times_[op];
    t.seconds += now_seconds() - t0;
    ++t.calls;
  }

  Ops& in_;
  std::map<std::string, OpTime> times_;
};

}  // namespace lct::bench
