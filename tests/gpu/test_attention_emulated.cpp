// The cuda backend's attention kernels (cuda/attention.cu), compiled for the host and run under
// the CUDA emulator (cuda_emu.h), against the cpu backend's blockwise attention in double. Runs
// on any machine; it checks the kernels' logic (fragment indexing, masks by position, online
// softmax, tile skipping, GQA, the backward's accumulation), not the GPU's execution.
#include "cuda_emu.h"  // must come first: it defines the CUDA built-ins attention.cu uses

#include "../../cuda/attention.cu"  // built with -Wno-unknown-pragmas: #pragma unroll is for nvcc

#include <gtest/gtest.h>

#include "attention_cases.h"

namespace lct::test {
namespace {

using cuda::bf16;

std::vector<bf16> to_bf16(const std::vector<float>& v) {
  std::vector<bf16> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) b[i] = __ushort_as_bfloat16(float_to_bf16(v[i]));
  return b;
}

class EmulatedAttention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(EmulatedAttention, ForwardBackwardMatchCpuDouble) {
  const AttnCase c = GetParam();
  const AttnData d = make_attn_data(c, 1234);
  const AttnRef ref = attention_reference(c, d);

  const std::vector<bf16> q = to_bf16(d.q), k = to_bf16(d.k), v = to_bf16(d.v), dout = to_bf16(d.dout);
  const cuda::AttnDims dims{c.B, c.Tq, c.Tk, c.Hq, c.Hkv, c.D};
  std::vector<int32_t> bounds(size_t(cuda::attention_bounds_ints(dims)));
  std::vector<float> delta(size_t(cuda::attention_delta_floats(dims)));
  std::vector<float> out(q.size(), 7.0f), lse(ref.lse.size(), 7.0f);  // written, not accumulated
  cuda::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), d.qpos.data(), d.kpos.data(), dims,
                          bounds.data(), nullptr);
  const double eo = rel_err(out, ref.out), el = lse_max_err(lse, ref.lse);
  EXPECT_LT(eo, kAttnOutTol) << c.name << " out";
  EXPECT_GE(el, 0.0) << c.name << " lse: -inf rows differ or NaN";
  EXPECT_LT(el, kAttnLseTol) << c.name << " lse";

  // The backward reads the kernel's own out/lse (as ring attention does).
  std::vector<float> dq = d.dq0, dk = d.dk0, dv = d.dv0;
  cuda::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(),
                           d.qpos.data(), d.kpos.data(), out.data(), lse.data(), dims, bounds.data(), delta.data(),
                           nullptr);
  const double eq = rel_err(dq, ref.dq), ek = rel_err(dk, ref.dk), ev = rel_err(dv, ref.dv);
  EXPECT_LT(eq, kAttnGradTol) << c.name << " dq";
  EXPECT_LT(ek, kAttnGradTol) << c.name << " dk";
  EXPECT_LT(ev, kAttnGradTol) << c.name << " dv";
  std::printf("  %-22s out %.2e  lse %.2e  dq %.2e  dk %.2e  dv %.2e\n", c.name.c_str(), eo, el, eq, ek, ev);
}

INSTANTIATE_TEST_SUITE_P(Cases, EmulatedAttention, ::testing::ValuesIn(attention_cases()),
                         [](const ::testing::TestParamInfo<AttnCase>& i) { return i.param.name; });

// The merge kernel against the cpu merge, including -inf rows on either side and a row range.
TEST(EmulatedAttention, MergeMatchesCpu) {
  const int64_t B = 2, T = 37, H = 3, D = 40;
  Rng rng(5);
  std::vector<float> out = random_bf16_values(size_t(B * T * H * D), rng, 1.0);
  std::vector<float> outb = random_bf16_values(out.size(), rng, 1.0);
  std::vector<float> lse(size_t(B * H * T)), lseb(lse.size());
  for (size_t i = 0; i < lse.size(); ++i) {
    lse[i] = i % 7 == 0 ? -INFINITY : float(rng.normal() * 3);
    lseb[i] = i % 5 == 0 ? -INFINITY : float(rng.normal() * 3);
  }
  std::vector<double> ro(out.begin(), out.end()), rl(lse.begin(), lse.end());
  const std::vector<double> rob(outb.begin(), outb.end()), rlb(lseb.begin(), lseb.end());
  cpu::attention_merge(ro.data(), rl.data(), rob.data(), rlb.data(), B, T, H, D);
  cuda::attention_merge(out.data(), lse.data(), outb.data(), DType::F32, lseb.data(), B, T, 0, T, H, D, nullptr);
  EXPECT_LT(rel_err(out, ro), 1e-6);
  EXPECT_GE(lse_max_err(lse, rl), 0.0);
  EXPECT_LT(lse_max_err(lse, rl), 1e-5);
}

}  // namespace
}  // namespace lct::test
