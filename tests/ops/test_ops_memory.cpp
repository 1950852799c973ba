// The no-T^2 and no-[T, vocab] claims, measured: attention forward+backward at T = 65536 and the
// LM head + loss with T * vocab * 4 bytes > 4 GiB run with a peak RSS far below those sizes.
#include <gtest/gtest.h>

#include "core/memory.h"
#include "core/timer.h"
#include "host_tensor.h"
#include "ops/ops.h"

namespace lct {
namespace {

using test::HostTensor;
constexpr int64_t kMiB = 1 << 20;

TEST(OpsMemory, AttentionAt65536TokensHasNoTxTBuffer) {
  const int64_t T = 65536, H = 1, D = 16;
  const double txt_bytes = double(T) * T * 4;  // what one fp32 score matrix would take: 16 GiB
  Rng rng(3);
  auto ops = make_cpu_ops(DType::F32, 128);
  HostTensor<float> q({1, T, H, D}), k({1, T, H, D}), v({1, T, H, D}), out({1, T, H, D}), lse({1, H, T});
  q.randn(rng, 0.5);
  k.randn(rng, 0.5);
  v.randn(rng);
  HostTensor<int32_t> pos({T});
  for (int64_t t = 0; t < T; ++t) pos[t] = int32_t(t);
  HostTensor<float> dq({1, T, H, D}), dk({1, T, H, D}), dv({1, T, H, D});
  ASSERT_TRUE(reset_peak_rss()) << "/proc/self/clear_refs: the peak below would be the process's lifetime peak";
  const int64_t before = current_rss_bytes();
  Timer timer;
  ops->attention_forward(out, lse, q, k, v, pos, pos);
  ops->attention_backward(dq, dk, dv, out /*any dout*/, q, k, v, pos, pos, out, lse);
  const int64_t peak = peak_rss_bytes();
  std::printf("attention fwd+bwd T=%lld: %.1f s, RSS before %.1f MiB, peak %.1f MiB (a T x T fp32 matrix: %.0f MiB)\n",
              (long long)T, timer.seconds(), before / double(kMiB), peak / double(kMiB), txt_bytes / kMiB);
  // A peak that cannot be read (-1) or is below the 7 x 4 MiB of tensors held here is no measurement.
  ASSERT_GE(before, 7 * T * H * D * 4) << "current RSS unreadable or wrong";
  ASSERT_GE(peak, before) << "peak RSS unreadable or wrong";
  EXPECT_LT(peak, 512 * kMiB);
  EXPECT_LT(double(peak), txt_bytes / 16);
  for (int64_t i = 0; i < 1000; ++i) ASSERT_TRUE(std::isfinite(dq[size_t(i) * 16]));
}

TEST(OpsMemory, LmHeadLossHasNoTokensByVocabBuffer) {
  const int64_t N = 16384, V = 65600, C = 8;
  const double full_logits = double(N) * V * 4;  // > 4 GiB
  ASSERT_GT(full_logits, 4.0 * 1024 * kMiB);
  Rng rng(5);
  auto ops = make_cpu_ops(DType::F32);
  HostTensor<float> x({N, C}), w({V, C}), stats({N, 3}), lse({N}), dx({N, C}), dw({V, C});
  x.randn(rng);
  w.randn(rng, 0.1);
  HostTensor<int32_t> tg({N});
  for (int64_t n = 0; n < N; ++n) tg[n] = int32_t(rng.below(V));
  ASSERT_TRUE(reset_peak_rss()) << "/proc/self/clear_refs: the peak below would be the process's lifetime peak";
  const int64_t before = current_rss_bytes();
  Timer timer;
  ops->lmhead_loss_forward(stats, x, w, tg, 0);
  const double loss = ops->lmhead_loss_combine(lse, stats, tg) / N;
  ops->lmhead_loss_backward(dx, dw, x, w, tg, lse, 1.0 / N, 0);
  const int64_t peak = peak_rss_bytes();
  std::printf("lm head + loss N=%lld V=%lld: loss %.4f, %.1f s, RSS before %.1f MiB, peak %.1f MiB (full logits: %.0f MiB)\n",
              (long long)N, (long long)V, loss, timer.seconds(), before / double(kMiB), peak / double(kMiB),
              full_logits / kMiB);
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_NEAR(loss, std::log(double(V)), 1.0);  // near-uniform predictions with small weights
  // A peak that cannot be read (-1) or is below the weights held here (V x C x 4 x 2) is no measurement.
  ASSERT_GE(before, 2 * V * C * 4) << "current RSS unreadable or wrong";
  ASSERT_GE(peak, before) << "peak RSS unreadable or wrong";
  EXPECT_LT(peak, 512 * kMiB);
  EXPECT_LT(double(peak), full_logits / 8);
}

}  // namespace
}  // namespace lct
