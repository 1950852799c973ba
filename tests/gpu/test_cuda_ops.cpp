// The cuda backend against the cpu backend (in double, on the same bf16-exact inputs), op by op,
// with the bf16 tolerances of docs/cuda.md. Without a usable GPU every test is skipped with the
// reason (CTest reports it as skipped).
//
// The same source also builds test_cuda_ops_emulated: the backend on the CPU emulation of the
// device (cuda/emu/, LCT_CUDA_EMULATE), which runs everywhere, with the same cases (all of them
// run there in about 25 s, so none is shrunk); the cuDNN case exists only on a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "attention_cases.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "ops/ops.h"
#ifdef LCT_HAVE_CUDA
#include "cuda/cuda_check.h"
#include "cuda/cuda_ops.h"
#include "cuda/kernels.h"
#endif

namespace lct::test {
namespace {

// ---- tolerances (docs/cuda.md, "Tolerances"): relative L2 error unless noted ----------------
constexpr double kBf16Out = 6e-3;   // one bf16 rounding of the result (2^-9 relative, ~3e-3 in L2)
constexpr double kF32Acc = 1e-4;    // f32 results accumulated from bf16-exact inputs
constexpr double kLmheadGrad = 1e-2;  // bf16 dlogits in the two backward GEMMs

// A device tensor of the backend under test, filled from and read back to floats.
class Dev {
 public:
  Dev(Ops& ops, DType dt, std::initializer_list<int64_t> dims) : ops_(&ops), t_(nullptr, dt, dims) {
    t_.ptr = ops.alloc(t_.bytes());
  }
  ~Dev() { ops_->free(t_.ptr); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;

  void set(const std::vector<float>& v) {
    EXPECT_EQ(int64_t(v.size()), t_.numel());
    switch (t_.dtype) {
      case DType::BF16: {
        std::vector<uint16_t> b = to_bf16_bits(v);
        ops_->from_host(t_, b.data());
        break;
      }
      case DType::F32: ops_->from_host(t_, v.data()); break;
      default: FAIL() << "set: dtype";
    }
  }
  void set_i32(const std::vector<int32_t>& v) { ops_->from_host(t_, v.data()); }
  std::vector<float> get() const {
    std::vector<float> v(size_t(t_.numel()));
    if (t_.dtype == DType::BF16) {
      std::vector<uint16_t> b(v.size());
      ops_->to_host(b.data(), t_);
      for (size_t i = 0; i < v.size(); ++i) v[i] = bf16_to_float(b[i]);
    } else {
      ops_->to_host(v.data(), t_);
    }
    return v;
  }
  const Tensor& t() const { return t_; }
  operator Tensor() const { return t_; }

 private:
  Ops* ops_;
  Tensor t_;
};

// A host double tensor for the cpu reference.
struct Ref {
  std::vector<double> v;
  Tensor t;
  Ref(const std::vector<float>& init, std::initializer_list<int64_t> dims) : v(init.begin(), init.end()) {
    t = Tensor(v.data(), DType::F64, dims);
  }
  Ref(std::initializer_list<int64_t> dims) {
    int64_t n = 1;
    for (auto d : dims) n *= d;
    v.assign(size_t(n), 0.0);
    t = Tensor(v.data(), DType::F64, dims);
  }
  operator Tensor() const { return t; }
};
Tensor i32(std::vector<int32_t>& v) { return Tensor(v.data(), DType::I32, {int64_t(v.size())}); }

class CudaOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_available(&why)) GTEST_SKIP() << "no usable GPU: " << why;
    gpu = make_cuda_ops(0);
    cpu = make_cpu_ops(DType::F64);
  }
  std::unique_ptr<Ops> gpu, cpu;
  Rng rng{2024};
};

TEST_F(CudaOpsTest, DtypesAndMemory) {
  EXPECT_EQ(gpu->act_dtype(), DType::BF16);
  EXPECT_EQ(gpu->acc_dtype(), DType::F32);
  const int64_t before = gpu->allocated_bytes();
  {
    Dev a(*gpu, DType::F32, {1000, 37});
    EXPECT_GE(gpu->allocated_bytes() - before, int64_t(1000 * 37 * 4));
    for (float x : a.get()) ASSERT_EQ(x, 0.0f) << "alloc() must zero";
    EXPECT_GE(gpu->peak_allocated_bytes(), gpu->allocated_bytes());
  }
  EXPECT_EQ(gpu->allocated_bytes(), before);
}

// Offload's pieces: allocations counted by category, pinned host memory counted apart from the
// device, and the asynchronous copies on the copy stream (several in flight, waited out of order)
// deliver exactly the bytes, ordered against the compute stream's ops before and after them.
TEST_F(CudaOpsTest, HostPoolCategoriesAndAsyncCopies) {
  const MemoryUse dev0 = gpu->device_memory(), host0 = gpu->host_memory();
  const int64_t n = 4096;
  void* w = gpu->alloc(size_t(n) * 2, Mem::Weights);
  void* g = gpu->alloc(size_t(n) * 4, Mem::Gradients);
  float* h = static_cast<float*>(gpu->alloc_host(size_t(n) * 4, Mem::Optimizer));
  float* h2 = static_cast<float*>(gpu->alloc_host(size_t(n) * 4, Mem::LayerInputs));
  const MemoryUse dev1 = gpu->device_memory(), host1 = gpu->host_memory();
  EXPECT_EQ(dev1.now_of(Mem::Weights) - dev0.now_of(Mem::Weights), int64_t(n) * 2);
  EXPECT_EQ(dev1.now_of(Mem::Gradients) - dev0.now_of(Mem::Gradients), int64_t(n) * 4);
  EXPECT_EQ(dev1.now_of(Mem::Optimizer), dev0.now_of(Mem::Optimizer)) << "host memory counted on the device";
  EXPECT_EQ(host1.now_of(Mem::Optimizer) - host0.now_of(Mem::Optimizer), int64_t(n) * 4);
  EXPECT_EQ(host1.now_of(Mem::LayerInputs) - host0.now_of(Mem::LayerInputs), int64_t(n) * 4);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h[i], 0.0f) << "alloc_host() must zero";
  // device -> host while the compute stream goes on: the copy sees the value written before it.
  Tensor gt(g, DType::F32, {n});
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float(i % 97) - 40.0f;
  gpu->from_host(gt, v.data());
  auto down = gpu->to_host_async(h, gt);
  // host -> device into another buffer, in flight at the same time; a later op reads it.
  for (int64_t i = 0; i < n; ++i) h2[i] = 0.5f * float(i % 13);
  {
    Dev up(*gpu, DType::F32, {n});
    auto upc = gpu->from_host_async(up.t(), h2);
    upc->wait();
    gpu->scale(up.t(), 2.0);  // ordered after the copy by wait()
    down->wait();
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h[i], v[size_t(i)]) << "to_host_async element " << i;
    const std::vector<float> got = up.get();
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[size_t(i)], float(i % 13)) << "from_host_async element " << i;
  }
  gpu->free(w);
  gpu->free(g);
  gpu->free_host(h);
  gpu->free_host(h2);
  EXPECT_EQ(gpu->host_memory().now, host0.now);
  EXPECT_EQ(gpu->device_memory().now, dev0.now);
}

TEST_F(CudaOpsTest, ErrorsNameTheCall) {
  Dev a(*gpu, DType::F32, {16});
  EXPECT_THROW(gpu->scale(Tensor(a.t().ptr, DType::I32, {16}), 2.0), Error);  // dtype check
  try {
    gpu->alloc(size_t(1) << 50);
    ADD_FAILURE() << "a 1 PiB allocation did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of GPU memory"), std::string::npos) << e.what();
  }
#ifdef LCT_HAVE_CUDA
  try {
    LCT_CUDA_CHECK(cudaSetDevice(12345));  // fails without harming the context
    ADD_FAILURE() << "cudaSetDevice(12345) did not fail";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cudaSetDevice(12345)"), std::string::npos) << m;
    EXPECT_NE(m.find("test_cuda_ops.cpp:"), std::string::npos) << m;
    EXPECT_NE(m.find("cudaErrorInvalidDevice"), std::string::npos) << m;
  }
#endif
}

TEST_F(CudaOpsTest, ConvertRoundsToNearestEvenLikeTheHost) {
  std::vector<float> v = random_bf16_values(1000, rng, 10.0);
  for (auto& x : v) x *= 1.0f + 1.0f / 1024;  // no longer bf16-exact
  v[0] = 1.0f + 1.0f / 256;                   // a tie: rounds to even (1.0)
  v[1] = 1.0f + 3.0f / 256;                   // a tie: rounds to even (1 + 4/256)
  v[2] = std::numeric_limits<float>::infinity();
  v[3] = -std::numeric_limits<float>::infinity();
  v[4] = std::numeric_limits<float>::quiet_NaN();
  v[5] = 1e-40f;                               // denormal
  v[6] = 3.4e38f;                              // rounds up to inf
  Dev f(*gpu, DType::F32, {1000}), b(*gpu, DType::BF16, {1000}), back(*gpu, DType::F32, {1000});
  f.set(v);
  gpu->convert(b, f);
  gpu->convert(back, b);
  std::vector<uint16_t> bits(1000);
  gpu->to_host(bits.data(), b.t());
  const std::vector<float> r = back.get();
  for (size_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ(bits[i], float_to_bf16(v[i])) << "element " << i << " = " << v[i];
    const float want = bf16_to_float(float_to_bf16(v[i]));
    if (std::isnan(want))
      ASSERT_TRUE(std::isnan(r[i]));
    else
      ASSERT_EQ(r[i], want);
  }
}

TEST_F(CudaOpsTest, Embedding) {
  for (int64_t C : {96, 100}) {  // vectorised and scalar rows
    const int64_t N = 300, V = 50, vb = 10;
    std::vector<int32_t> tok(N);
    for (auto& t : tok) t = int32_t(rng.below(70));
    const std::vector<float> wte = random_bf16_values(size_t(V * C), rng, 1.0);
    const std::vector<float> dout = random_bf16_values(size_t(N * C), rng, 1.0);
    const std::vector<float> dw0 = random_bf16_values(size_t(V * C), rng, 0.1);
    Dev gtok(*gpu, DType::I32, {N}), gw(*gpu, DType::BF16, {V, C}), gout(*gpu, DType::BF16, {N, C}),
        gdout(*gpu, DType::BF16, {N, C}), gdw(*gpu, DType::F32, {V, C});
    gtok.set_i32(tok);
    gw.set(wte);
    gdout.set(dout);
    gdw.set(dw0);
    gpu->embedding_forward(gout, gtok, gw, vb);
    gpu->embedding_backward(gdw, gdout, gtok, vb);
    Ref rw(wte, {V, C}), rout({N, C}), rdout(dout, {N, C}), rdw(dw0, {V, C});
    cpu->embedding_forward(rout, i32(tok), rw, vb);
    cpu->embedding_backward(rdw, rdout, i32(tok), vb);
    EXPECT_EQ(rel_err(gout.get(), rout.v), 0.0) << "C=" << C;
    EXPECT_LT(rel_err(gdw.get(), rdw.v), 1e-6) << "C=" << C;
  }
}

TEST_F(CudaOpsTest, RmsNorm) {
  for (int64_t C : {128, 100, 4096}) {
    const int64_t N = 257;
    const std::vector<float> x = random_bf16_values(size_t(N * C), rng, 2.0);
    const std::vector<float> w = random_bf16_values(size_t(C), rng, 1.0);
    const std::vector<float> dy = random_bf16_values(size_t(N * C), rng, 1.0);
    const std::vector<float> dx0 = random_bf16_values(size_t(N * C), rng, 1.0);
    const std::vector<float> dw0 = random_bf16_values(size_t(C), rng, 1.0);
    Dev gx(*gpu, DType::BF16, {N, C}), gw(*gpu, DType::BF16, {C}), gy(*gpu, DType::BF16, {N, C}),
        gr(*gpu, DType::F32, {N}), gdy(*gpu, DType::BF16, {N, C}), gdx(*gpu, DType::BF16, {N, C}),
        gdw(*gpu, DType::F32, {C});
    gx.set(x);
    gw.set(w);
    gdy.set(dy);
    gdx.set(dx0);
    gdw.set(dw0);
    gpu->rmsnorm_forward(gy, gr, gx, gw, 1e-5);
    gpu->rmsnorm_backward(gdx, gdw, gdy, gx, gw, gr);
    Ref rx(x, {N, C}), rw(w, {C}), ry({N, C}), rr({N}), rdy(dy, {N, C}), rdx(dx0, {N, C}), rdw(dw0, {C});
    cpu->rmsnorm_forward(ry, rr, rx, rw, 1e-5);
    cpu->rmsnorm_backward(rdx, rdw, rdy, rx, rw, rr);
    EXPECT_LT(rel_err(gy.get(), ry.v), kBf16Out) << "C=" << C;
    EXPECT_LT(rel_err(gr.get(), rr.v), 1e-6) << "C=" << C;
    EXPECT_LT(rel_err(gdx.get(), rdx.v), kBf16Out) << "C=" << C;
    EXPECT_LT(rel_err(gdw.get(), rdw.v), kF32Acc) << "C=" << C;
  }
}

TEST_F(CudaOpsTest, Matmul) {
  const int64_t N = 300, K = 200, M = 152;
  const std::vector<float> x = random_bf16_values(size_t(N * K), rng, 1.0);
  const std::vector<float> w = random_bf16_values(size_t(M * K), rng, 0.1);
  const std::vector<float> y0 = random_bf16_values(size_t(N * M), rng, 1.0);
  const std::vector<float> dy = random_bf16_values(size_t(N * M), rng, 1.0);
  const std::vector<float> dw0 = random_bf16_values(size_t(M * K), rng, 1.0);
  for (bool acc : {false, true}) {
    Dev gx(*gpu, DType::BF16, {N, K}), gw(*gpu, DType::BF16, {M, K}), gy(*gpu, DType::BF16, {N, M}),
        gyf(*gpu, DType::F32, {N, M}), gdy(*gpu, DType::BF16, {N, M}), gdx(*gpu, DType::BF16, {N, K}),
        gdw(*gpu, DType::F32, {M, K});
    gx.set(x);
    gw.set(w);
    gy.set(y0);
    gyf.set(y0);
    gdy.set(dy);
    gdx.set(x);
    gdw.set(dw0);
    gpu->matmul_forward(gy, gx, gw, acc);
    gpu->matmul_forward(gyf, gx, gw, acc);
    gpu->matmul_backward(gdx, gdw, gdy, gx, gw, acc);
    Ref rx(x, {N, K}), rw(w, {M, K}), ry(y0, {N, M}), rdy(dy, {N, M}), rdx(x, {N, K}), rdw(dw0, {M, K});
    cpu->matmul_forward(ry, rx, rw, acc);
    cpu->matmul_backward(rdx, rdw, rdy, rx, rw, acc);
    EXPECT_LT(rel_err(gy.get(), ry.v), kBf16Out) << "accumulate=" << acc;
    EXPECT_LT(rel_err(gyf.get(), ry.v), kF32Acc) << "f32 y, accumulate=" << acc;
    EXPECT_LT(rel_err(gdx.get(), rdx.v), kBf16Out) << "accumulate=" << acc;
    EXPECT_LT(rel_err(gdw.get(), rdw.v), kF32Acc) << "accumulate=" << acc;
  }
}

// RoPE at positions near 1M against a double-precision rotation: the tables are computed in
// double and stored in f32 (as model/rope.cpp does); the reference rotates with the double
// cos/sin. The error is the bf16 rounding of the result, not the angle.
TEST_F(CudaOpsTest, RopeNearOneMillionAgainstDouble) {
  const int64_t B = 2, T = 100, H = 3, D = 128, half = D / 2;
  std::vector<double> cosd(size_t(T * half)), sind(cosd.size());
  std::vector<float> cosf(cosd.size()), sinf(cosd.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double pos = 1048576.0 - 50 + double(t);  // around 2^20
      const double ang = pos / std::pow(500000.0, 2.0 * double(i) / double(D));
      cosd[size_t(t * half + i)] = std::cos(ang);
      sind[size_t(t * half + i)] = std::sin(ang);
      cosf[size_t(t * half + i)] = float(cosd[size_t(t * half + i)]);
      sinf[size_t(t * half + i)] = float(sind[size_t(t * half + i)]);
    }
  const std::vector<float> x = random_bf16_values(size_t(B * T * H * D), rng, 1.0);
  std::vector<double> want(x.size());
  for (int64_t r = 0; r < B * T * H; ++r) {
    const int64_t t = (r / H) % T;
    for (int64_t i = 0; i < half; ++i) {
      const double x1 = x[size_t(r * D + i)], x2 = x[size_t(r * D + i + half)];
      const double c = cosd[size_t(t * half + i)], s = sind[size_t(t * half + i)];
      want[size_t(r * D + i)] = x1 * c - x2 * s;
      want[size_t(r * D + i + half)] = x2 * c + x1 * s;
    }
  }
  Dev gx(*gpu, DType::BF16, {B, T, H, D}), gc(*gpu, DType::F32, {T, half}), gs(*gpu, DType::F32, {T, half});
  gx.set(x);
  gc.set(cosf);
  gs.set(sinf);
  gpu->rope_forward(gx, gc, gs);
  const std::vector<float> y = gx.get();
  EXPECT_LT(rel_err(y, want), kBf16Out);
  double worst = 0;
  for (size_t i = 0; i < y.size(); ++i) worst = std::max(worst, std::fabs(double(y[i]) - want[i]));
  EXPECT_LT(worst, 0.03) << "largest element error (|x| ~ 4 at most: bf16 half-ulp is 2^-7)";
  gpu->rope_backward(gx, gc, gs);  // the inverse rotation: back to x up to two bf16 roundings
  EXPECT_LT(rel_err(gx.get(), std::vector<double>(x.begin(), x.end())), 2 * kBf16Out);
}

TEST_F(CudaOpsTest, SwigluAndResidual) {
  for (int64_t n : {4096, 1001}) {
    const std::vector<float> g = random_bf16_values(size_t(n), rng, 2.0), u = random_bf16_values(size_t(n), rng, 1.0),
                             dh = random_bf16_values(size_t(n), rng, 1.0);
    Dev gg(*gpu, DType::BF16, {n}), gu(*gpu, DType::BF16, {n}), gh(*gpu, DType::BF16, {n}),
        gdh(*gpu, DType::BF16, {n}), gdg(*gpu, DType::BF16, {n}), gdu(*gpu, DType::BF16, {n});
    gg.set(g);
    gu.set(u);
    gdh.set(dh);
    gpu->swiglu_forward(gh, gg, gu);
    gpu->swiglu_backward(gdg, gdu, gdh, gg, gu);
    Ref rg(g, {n}), ru(u, {n}), rh({n}), rdh(dh, {n}), rdg({n}), rdu({n});
    cpu->swiglu_forward(rh, rg, ru);
    cpu->swiglu_backward(rdg, rdu, rdh, rg, ru);
    EXPECT_LT(rel_err(gh.get(), rh.v), kBf16Out) << n;
    EXPECT_LT(rel_err(gdg.get(), rdg.v), kBf16Out) << n;
    EXPECT_LT(rel_err(gdu.get(), rdu.v), kBf16Out) << n;

    // Residual: y = a + b with y aliasing a; then da += dy, db += dy with dy = that sum.
    Ref ra(g, {n}), rb(u, {n}), rda(dh, {n}), rdb(u, {n});
    cpu->add_forward(ra, ra, rb);
    cpu->add_backward(rda, rdb, ra);
    gpu->add_forward(gg, gg, gu);
    gpu->add_backward(gdh, gu, gg);
    EXPECT_LT(rel_err(gg.get(), ra.v), kBf16Out) << n;
    EXPECT_LT(rel_err(gdh.get(), rda.v), 2 * kBf16Out) << n;
    EXPECT_LT(rel_err(gu.get(), rdb.v), 2 * kBf16Out) << n;
  }
}

void run_attention_case(Ops& gpu, const AttnCase& c, double out_tol, double lse_tol, double grad_tol) {
  const AttnData d = make_attn_data(c, 99);
  const AttnRef ref = attention_reference(c, d);
  Dev q(gpu, DType::BF16, {c.B, c.Tq, c.Hq, c.D}), k(gpu, DType::BF16, {c.B, c.Tk, c.Hkv, c.D}),
      v(gpu, DType::BF16, {c.B, c.Tk, c.Hkv, c.D}), dout(gpu, DType::BF16, {c.B, c.Tq, c.Hq, c.D}),
      qp(gpu, DType::I32, {per_row(c.pos) ? c.B * c.Tq : c.Tq}), kp(gpu, DType::I32, {per_row(c.pos) ? c.B * c.Tk : c.Tk}),
      qs(gpu, DType::I32, {c.B * c.Tq}), out(gpu, DType::F32, {c.B, c.Tq, c.Hq, c.D}),
      lse(gpu, DType::F32, {c.B, c.Hq, c.Tq}), dq(gpu, DType::F32, {c.B, c.Tq, c.Hq, c.D}),
      dk(gpu, DType::F32, {c.B, c.Tk, c.Hkv, c.D}), dv(gpu, DType::F32, {c.B, c.Tk, c.Hkv, c.D});
  q.set(d.q);
  k.set(d.k);
  v.set(d.v);
  dout.set(d.dout);
  qp.set_i32(d.qpos);
  kp.set_i32(d.kpos);
  dq.set(d.dq0);
  dk.set(d.dk0);
  dv.set(d.dv0);
  AttnMask mask{qp, kp, Tensor()};
  if (!d.qstart.empty()) {
    qs.set_i32(d.qstart);
    mask.q_start = qs;
  }
  gpu.attention_forward(out, lse, q, k, v, mask);
  gpu.attention_backward(dq, dk, dv, dout, q, k, v, mask, out, lse);
  const double el = lse_max_err(lse.get(), ref.lse);
  EXPECT_LT(rel_err(out.get(), ref.out), out_tol) << c.name;
  EXPECT_GE(el, 0.0) << c.name << ": -inf rows differ or NaN";
  EXPECT_LT(el, lse_tol) << c.name;
  EXPECT_LT(rel_err(dq.get(), ref.dq), grad_tol) << c.name;
  EXPECT_LT(rel_err(dk.get(), ref.dk), grad_tol) << c.name;
  EXPECT_LT(rel_err(dv.get(), ref.dv), grad_tol) << c.name;
}

std::vector<AttnCase> gpu_attention_cases() {
  std::vector<AttnCase> cs = attention_cases();
  cs.push_back({"causal_d128_gqa4_long", 1, 1000, 1000, 8, 2, 128, PosLayout::Causal});
  cs.push_back({"zigzag_d64_gqa1_long", 2, 700, 700, 4, 4, 64, PosLayout::Zigzag});
  cs.push_back({"documents_d128_gqa4_long", 2, 1000, 1000, 8, 2, 128, PosLayout::Documents});
  return cs;
}

TEST_F(CudaOpsTest, AttentionOwnKernels) {
  for (const AttnCase& c : gpu_attention_cases()) run_attention_case(*gpu, c, kAttnOutTol, kAttnLseTol, kAttnGradTol);
}

#if defined(LCT_HAVE_CUDA) && !defined(LCT_CUDA_EMULATE)
TEST_F(CudaOpsTest, AttentionCudnn) {
  std::unique_ptr<Ops> cudnn;
  try {
    cudnn = make_cuda_ops(0, AttentionImpl::Cudnn);
  } catch (const InputError& e) {
    GTEST_SKIP() << "cuDNN attention unavailable: " << e.what();
  }
  // cuDNN writes bf16 O and dQ/dK/dV: one more bf16 rounding than our kernels.
  for (const AttnCase& c : gpu_attention_cases())
    if (c.D >= 64 && !per_row(c.pos)) run_attention_case(*cudnn, c, 2 * kAttnOutTol, kAttnLseTol, 2 * kAttnGradTol);
  // Document masks (reset_attention_mask) are refused with an input error: no ragged offsets here.
  const AttnCase doc{"documents", 1, 64, 64, 2, 2, 64, PosLayout::Documents};
  EXPECT_THROW(run_attention_case(*cudnn, doc, 1, 1, 1), InputError);
}
#endif

TEST_F(CudaOpsTest, AttentionMerge) {
  const int64_t B = 2, T = 37, H = 3, D = 64;
  std::vector<float> o = random_bf16_values(size_t(B * T * H * D), rng, 1.0), ob = random_bf16_values(o.size(), rng, 1.0);
  std::vector<float> l(size_t(B * H * T)), lb(l.size());
  for (size_t i = 0; i < l.size(); ++i) {
    l[i] = i % 7 == 0 ? -INFINITY : float(rng.normal() * 3);
    lb[i] = i % 5 == 0 ? -INFINITY : float(rng.normal() * 3);
  }
  Ref ro(o, {B, T, H, D}), rob(ob, {B, T, H, D}), rl(l, {B, H, T}), rlb(lb, {B, H, T});
  cpu->attention_merge(ro, rl, rob, rlb);
  for (DType obt : {DType::F32, DType::BF16}) {  // the partial output in f32 or bf16 (bf16-exact values)
    Dev go(*gpu, DType::F32, {B, T, H, D}), gob(*gpu, obt, {B, T, H, D}), gl(*gpu, DType::F32, {B, H, T}),
        glb(*gpu, DType::F32, {B, H, T});
    go.set(o);
    gob.set(ob);
    gl.set(l);
    glb.set(lb);
    gpu->attention_merge(go, gl, gob, glb);
    EXPECT_LT(rel_err(go.get(), ro.v), 1e-6) << dtype_name(obt);
    EXPECT_GE(lse_max_err(gl.get(), rl.v), 0.0) << dtype_name(obt);
    EXPECT_LT(lse_max_err(gl.get(), rl.v), 1e-5) << dtype_name(obt);
  }
}

// Two vocabulary slices (as tp = 2 would have), ignored targets; the second shape has more
// logits per slice (1400 x 25000 = 35M) than one LM-head chunk (2^25), so the chunk loop runs
// twice. Slices are multiples of 8 rows (the model pads its vocabulary): the bf16 dlogits tile
// is a GEMM operand whose leading dimension cuBLASLt wants in multiples of 16 bytes.
TEST_F(CudaOpsTest, LmHeadLoss) {
  struct Shape {
    int64_t N, C, V;
  };
  for (Shape sh : {Shape{300, 64, 1000}, Shape{1400, 64, 50000}}) {
    const int64_t N = sh.N, C = sh.C, V = sh.V, Vh = V / 2 / 8 * 8;
    const std::vector<float> x = random_bf16_values(size_t(N * C), rng, 1.0);
    const std::vector<float> w = random_bf16_values(size_t(V * C), rng, 0.2);
    std::vector<int32_t> tg(N);
    for (int64_t n = 0; n < N; ++n) tg[size_t(n)] = n % 11 == 0 ? -1 : int32_t(rng.below(uint64_t(V)));
    const std::vector<float> w0(w.begin(), w.begin() + Vh * C), w1(w.begin() + Vh * C, w.end());
    const double scale = 1.0 / double(N);

    Dev gx(*gpu, DType::BF16, {N, C}), gw0(*gpu, DType::BF16, {Vh, C}), gw1(*gpu, DType::BF16, {V - Vh, C}),
        gt(*gpu, DType::I32, {N}), gst(*gpu, DType::F32, {2, N, 3}), glse(*gpu, DType::F32, {N}),
        gdx(*gpu, DType::BF16, {N, C}), gdw(*gpu, DType::F32, {Vh, C});
    gx.set(x);
    gw0.set(w0);
    gw1.set(w1);
    gt.set_i32(tg);
    gpu->lmhead_loss_forward(gst.t().slice(0, 1).view({N, 3}), gx, gw0, gt, 0);
    gpu->lmhead_loss_forward(gst.t().slice(1, 1).view({N, 3}), gx, gw1, gt, Vh);
    const double gloss = gpu->lmhead_loss_combine(glse, gst, gt);
    gpu->lmhead_loss_backward(gdx, gdw, gx, gw0, gt, glse, scale, 0);

    Ref rx(x, {N, C}), rw0(w0, {Vh, C}), rw1(w1, {V - Vh, C}), rst({2, N, 3}), rlse({N}), rdx({N, C}), rdw({Vh, C});
    Tensor rs = rst.t;
    cpu->lmhead_loss_forward(rs.slice(0, 1).view({N, 3}), rx, rw0, i32(tg), 0);
    cpu->lmhead_loss_forward(rs.slice(1, 1).view({N, 3}), rx, rw1, i32(tg), Vh);
    const double rloss = cpu->lmhead_loss_combine(rlse, rst, i32(tg));
    cpu->lmhead_loss_backward(rdx, rdw, rx, rw0, i32(tg), rlse, scale, 0);

    EXPECT_LT(rel_err(gst.get(), rst.v), 1e-5) << "V=" << V;
    EXPECT_LT(lse_max_err(glse.get(), rlse.v), 1e-4) << "V=" << V;
    EXPECT_NEAR(gloss, rloss, 1e-5 * std::fabs(rloss)) << "V=" << V;
    EXPECT_LT(rel_err(gdx.get(), rdx.v), kLmheadGrad) << "V=" << V;
    EXPECT_LT(rel_err(gdw.get(), rdw.v), kLmheadGrad) << "V=" << V;
  }
}

// Vocabulary padding (model.make_vocab_size_divisible_by): a slice of 256 rows whose last 56 are
// padding. Padded logits must not enter the statistics, and their dlogits (hence their dw rows)
// must be zero; the result equals the cpu backend on the 200 real rows alone.
TEST_F(CudaOpsTest, LmHeadLossMasksVocabularyPadding) {
  const int64_t N = 96, C = 64, Vp = 256, Vv = 200;
  const std::vector<float> x = random_bf16_values(size_t(N * C), rng, 1.0);
  std::vector<float> w = random_bf16_values(size_t(Vp * C), rng, 0.2);
  for (int64_t i = Vv * C; i < Vp * C; ++i) w[size_t(i)] = 0.0f;  // padding rows are zero
  std::vector<int32_t> tg(N);
  for (int64_t n = 0; n < N; ++n) tg[size_t(n)] = n % 7 == 0 ? -1 : int32_t(rng.below(uint64_t(Vv)));
  Dev gx(*gpu, DType::BF16, {N, C}), gw(*gpu, DType::BF16, {Vp, C}), gt(*gpu, DType::I32, {N}),
      gst(*gpu, DType::F32, {1, N, 3}), glse(*gpu, DType::F32, {N}), gdx(*gpu, DType::BF16, {N, C}),
      gdw(*gpu, DType::F32, {Vp, C});
  gx.set(x);
  gw.set(w);
  gt.set_i32(tg);
  gpu->lmhead_loss_forward(gst.t().view({N, 3}), gx, gw, gt, 0, Vv);
  const double gloss = gpu->lmhead_loss_combine(glse, gst, gt);
  gpu->lmhead_loss_backward(gdx, gdw, gx, gw, gt, glse, 1.0 / double(N), 0, Vv);

  const std::vector<float> wv(w.begin(), w.begin() + Vv * C);
  Ref rx(x, {N, C}), rw(wv, {Vv, C}), rst({1, N, 3}), rlse({N}), rdx({N, C}), rdw({Vv, C});
  cpu->lmhead_loss_forward(rst.t.view({N, 3}), rx, rw, i32(tg), 0);
  const double rloss = cpu->lmhead_loss_combine(rlse, rst, i32(tg));
  cpu->lmhead_loss_backward(rdx, rdw, rx, rw, i32(tg), rlse, 1.0 / double(N), 0);
  EXPECT_LT(rel_err(gst.get(), rst.v), 1e-5);
  EXPECT_NEAR(gloss, rloss, 1e-5 * std::fabs(rloss));
  EXPECT_LT(rel_err(gdx.get(), rdx.v), kLmheadGrad);
  const std::vector<float> dw = gdw.get();
  EXPECT_LT(rel_err(std::vector<float>(dw.begin(), dw.begin() + Vv * C), rdw.v), kLmheadGrad);
  for (int64_t i = Vv * C; i < Vp * C; ++i) ASSERT_EQ(dw[size_t(i)], 0.0f) << "padding row " << i / C << " got a gradient";
}

TEST_F(CudaOpsTest, OptimizerAndReductions) {
  const int64_t n = 100003;
  const std::vector<float> p = random_bf16_values(size_t(n), rng, 1.0), g = random_bf16_values(size_t(n), rng, 0.01);
  Dev gp(*gpu, DType::F32, {n}), gm(*gpu, DType::F32, {n}), gv(*gpu, DType::F32, {n}), gg(*gpu, DType::F32, {n});
  gp.set(p);
  gg.set(g);
  Ref rp(p, {n}), rm({n}), rv({n}), rg(g, {n});
  for (int64_t step = 1; step <= 3; ++step) {
    AdamWArgs a;
    a.lr = 1e-3;
    a.weight_decay = 0.1;
    a.step = step;
    a.grad_scale = 0.5;
    gpu->adamw_update(gp, gm, gv, gg, a);
    cpu->adamw_update(rp, rm, rv, rg, a);
  }
  EXPECT_LT(rel_err(gp.get(), rp.v), 1e-6);
  EXPECT_LT(rel_err(gm.get(), rm.v), 1e-6);
  EXPECT_LT(rel_err(gv.get(), rv.v), 1e-5);
  gpu->sgd_update(gp, gg, 0.1, 0.01, 2.0);
  cpu->sgd_update(rp, rg, 0.1, 0.01, 2.0);
  EXPECT_LT(rel_err(gp.get(), rp.v), 1e-6);

  // sum_squares in double over f32 and bf16; NaN propagates.
  const double ss = gpu->sum_squares(gg), rss = cpu->sum_squares(rg);
  EXPECT_NEAR(ss, rss, 1e-12 * rss);
  Dev gb(*gpu, DType::BF16, {n});
  gb.set(g);
  EXPECT_NEAR(gpu->sum_squares(gb), rss, 1e-12 * rss);
  std::vector<float> gn = g;
  gn[777] = std::numeric_limits<float>::quiet_NaN();
  gg.set(gn);
  EXPECT_TRUE(std::isnan(gpu->sum_squares(gg)));
  gg.set(g);

  // scale and axpy: double arithmetic rounded once to f32, exactly as the f32 cpu backend.
  std::unique_ptr<Ops> cpu32 = make_cpu_ops(DType::F32);
  std::vector<float> hy = p, hx = g;
  Tensor ty(hy.data(), DType::F32, {n}), tx(hx.data(), DType::F32, {n});
  cpu32->scale(ty, 0.37);
  cpu32->axpy(ty, -1.7, tx);
  Dev gy(*gpu, DType::F32, {n});
  gy.set(p);
  gpu->scale(gy, 0.37);
  gpu->axpy(gy, -1.7, gg);
  const std::vector<float> got = gy.get();
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[size_t(i)], hy[size_t(i)]) << i;
}


// convert between every pair of dtypes (the generic kernel; bf16 <-> f32 have their own) against
// the cpu backend's convert, bit for bit.
TEST_F(CudaOpsTest, ConvertBetweenAnyDtypes) {
  const int64_t n = 777;
  std::vector<double> src(static_cast<size_t>(n));
  for (auto& x : src) x = rng.normal() * 300.0;
  src[0] = 2.5;  // an I32 conversion truncates
  src[1] = -2.5;
  std::unique_ptr<Ops> host = make_cpu_ops(DType::F64);
  const DType all[] = {DType::F32, DType::F64, DType::BF16, DType::I32};
  for (DType st : all)
    for (DType dt : all) {
      if (st == dt || (st == DType::F32 && dt == DType::BF16) || (st == DType::BF16 && dt == DType::F32)) continue;
      // The source values in dtype st, made on the host by the cpu backend.
      std::vector<unsigned char> hs(size_t(n) * dtype_size(st)), want(size_t(n) * dtype_size(dt)),
          got(want.size());
      host->convert(Tensor(hs.data(), st, {n}), Tensor(src.data(), DType::F64, {n}));
      host->convert(Tensor(want.data(), dt, {n}), Tensor(hs.data(), st, {n}));
      Dev gs(*gpu, st, {n}), gd(*gpu, dt, {n});
      gpu->from_host(gs, hs.data());
      gpu->convert(gd, gs);
      gpu->to_host(got.data(), gd.t());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size()), 0) << dtype_name(st) << " -> " << dtype_name(dt);
    }
}

// scale and axpy on bf16 and mixed f32/bf16 vectors (the f32-only case is in OptimizerAndReductions).
TEST_F(CudaOpsTest, ScaleAndAxpyBf16) {
  const int64_t n = 5003;
  const std::vector<float> y = random_bf16_values(size_t(n), rng, 1.0), x = random_bf16_values(size_t(n), rng, 1.0);
  const double a = 0.37, b = -1.7;
  std::vector<double> scaled(static_cast<size_t>(n)), sum(static_cast<size_t>(n));
  for (size_t i = 0; i < size_t(n); ++i) {
    scaled[i] = double(y[i]) * a;
    sum[i] = double(y[i]) + b * double(x[i]);
  }
  for (DType ty : {DType::F32, DType::BF16})
    for (DType tx : {DType::F32, DType::BF16}) {
      Dev gy(*gpu, ty, {n}), gx(*gpu, tx, {n});
      gy.set(y);
      gx.set(x);
      gpu->axpy(gy, b, gx);
      // One rounding to the result dtype (f32 results: double arithmetic, then f32).
      EXPECT_LT(rel_err(gy.get(), sum), ty == DType::BF16 ? kBf16Out : 1e-7) << dtype_name(ty) << " += " << dtype_name(tx);
    }
  Dev gy(*gpu, DType::BF16, {n});
  gy.set(y);
  gpu->scale(gy, a);
  EXPECT_LT(rel_err(gy.get(), scaled), kBf16Out);
}

// permute_copy (the all-to-all context parallelism's head <-> sequence reshuffles): the gathers the
// attention wrapper uses (a 5-D head pack, a sequence merge, a K/V head broadcast with stride 0,
// an odd innermost stride) on bf16 and f32, copied exactly as the cpu backend copies them, and
// the accumulating form (summed replicas) within one rounding.
TEST_F(CudaOpsTest, PermuteCopy) {
  const int64_t B = 2, Tl = 5, H = 4, U = 2, D = 6, h = H / U;
  const std::vector<CopyMap> maps = {
      CopyMap::of({{U, h * D}, {B, Tl * H * D}, {Tl, H * D}, {h, D}, {D, 1}}),  // q [B,Tl,H,D] -> [U,B,Tl,h,D]
      CopyMap::of({{B, Tl * h * D}, {U, B * Tl * h * D}, {Tl, h * D}, {h * D, 1}}),  // [U,B,Tl,h,D] -> [B,U*Tl,h,D]
      CopyMap::of({{H, D}, {2, 0}, {2 * B, Tl * H * D}, {Tl, H * D}, {D, 1}}),  // K/V heads to 2 ranks each
      CopyMap::of({{3, 7}, {11, 2}}),                                         // innermost stride 2
  };
  const int64_t src_n = 2 * B * Tl * H * D;  // holds every map's offsets
  const std::vector<float> src = random_bf16_values(size_t(src_n), rng, 1.0);
  for (const CopyMap& m : maps) {
    const int64_t n = m.numel();
    ASSERT_LT(m.max_offset(), src_n);
    const std::vector<float> dst0 = random_bf16_values(size_t(n), rng, 1.0);
    for (bool acc : {false, true}) {
      Ref rs(src, {src_n}), rd(dst0, {n});
      cpu->permute_copy(rd, rs, m, acc);
      for (DType t : {DType::BF16, DType::F32}) {
        Dev gs(*gpu, t, {src_n}), gd(*gpu, t, {n});
        gs.set(src);
        gd.set(dst0);
        gpu->permute_copy(gd, gs, m, acc);
        const std::vector<float> got = gd.get();
        if (!acc) {
          for (int64_t i = 0; i < n; ++i) ASSERT_EQ(double(got[size_t(i)]), rd.v[size_t(i)]) << dtype_name(t) << " " << i;
        } else {
          EXPECT_LT(rel_err(got, rd.v), t == DType::BF16 ? kBf16Out : 1e-7) << dtype_name(t) << " accumulate";
        }
      }
    }
  }
  Dev a(*gpu, DType::BF16, {10}), b(*gpu, DType::F32, {10});
  EXPECT_THROW(gpu->permute_copy(a, b, CopyMap::of({{10, 1}})), Error);  // dtypes differ
  Dev c(*gpu, DType::BF16, {10});
  EXPECT_THROW(gpu->permute_copy(a, c, CopyMap::of({{10, 2}})), Error);  // reads past src
}

#ifdef LCT_HAVE_CUDA
// The cuDNN path's helper kernels (elementwise.cu), reached only through that path: called
// directly and compared with the same arithmetic on the host (exact).
TEST_F(CudaOpsTest, CudnnPathHelpers) {
  const cudaStream_t s = cuda_stream_of(*gpu);
  const int64_t B = 2, T = 50, W = 24, row0 = 7, nr = 30, H = 3;
  const std::vector<float> dst0 = random_bf16_values(size_t(B * T * W), rng, 1.0);
  const std::vector<float> src = random_bf16_values(size_t(B * nr * W), rng, 1.0);
  Dev gd(*gpu, DType::F32, {B, T, W}), gs(*gpu, DType::BF16, {B, nr, W});
  gd.set(dst0);
  gs.set(src);
  cuda::add_rows_bf16_to_f32(static_cast<float*>(gd.t().ptr), T, row0, static_cast<const cuda::bf16*>(gs.t().ptr), nr,
                             B, W, s);
  std::vector<float> want = dst0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t r = 0; r < nr; ++r)
      for (int64_t w = 0; w < W; ++w) want[size_t((b * T + row0 + r) * W + w)] += src[size_t((b * nr + r) * W + w)];
  EXPECT_EQ(gd.get(), want) << "add_rows_bf16_to_f32";

  cuda::fill_f32(static_cast<float*>(gd.t().ptr), -3.25f, B * T * W, s);
  EXPECT_EQ(gd.get(), std::vector<float>(size_t(B * T * W), -3.25f)) << "fill_f32";

  const std::vector<float> lse = random_bf16_values(size_t(B * H * T), rng, 3.0);
  Dev gl(*gpu, DType::F32, {B, H, T}), gg(*gpu, DType::F32, {B, H, nr});
  gl.set(lse);
  cuda::gather_rows_bhT(static_cast<float*>(gg.t().ptr), static_cast<const float*>(gl.t().ptr), B, H, T, row0, nr, s);
  std::vector<float> rows;
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t r = 0; r < nr; ++r) rows.push_back(lse[size_t(bh * T + row0 + r)]);
  EXPECT_EQ(gg.get(), rows) << "gather_rows_bhT";
}
#endif

}  // namespace
}  // namespace lct::test
