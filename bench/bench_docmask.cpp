// Packed-document measurements (issue 18) for docs/parallel.md and docs/PERFORMANCE.md; run by
// tools/measure_docmask.sh, which commits their JSON under docs/perf/.
//
//   bench_docmask balance [T] [PACKINGS]
//     attention work per ring rank (visible (query, key) pairs, the count the ring's hop skipping
//     and the kernels' tile skipping follow) over PACKINGS random packings of documents whose
//     lengths are drawn log-uniformly from 1K to T, for sequence zigzag and doc_zigzag at cp 4 and
//     8: the mean and worst of max/mean over the ranks, and doc_zigzag's padding.
//   bench_docmask skip [T] [DOCS] [REPS]
//     cpu attention forward + backward at cp 1 (one call, as the ring's local hop), B = 1, one
//     head of 64, tile 64, fp32: plain causal vs DOCS documents of equal length, and the
//     visible-pair fraction. Best of REPS.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "attention/attention_meta.h"
#include "core/rng.h"
#include "core/timer.h"
#include "ops/ops.h"

namespace lct {
namespace {

// Document begins of one packing: lengths log-uniform in [1024, T] until the sample is full
// (the last document is cut by the sample's end, as a sample cut from a token stream is).
std::vector<int32_t> random_packing(int64_t T, Rng& rng) {
  std::vector<int32_t> begins;
  int64_t at = 0;
  while (at < T) {
    begins.push_back(int32_t(at));
    const double len = std::exp(std::log(1024.0) + rng.uniform() * (std::log(double(T)) - std::log(1024.0)));
    at += int64_t(len);
  }
  return begins;
}

int balance(int64_t T, int packings) {
  std::printf("{\"T\": %lld, \"packings\": %d, \"lengths\": \"log-uniform 1024..T\", \"rows\": [\n", (long long)T,
              packings);
  bool first = true;
  for (int cp : {4, 8})
    for (CpSharding sh : {CpSharding::Zigzag, CpSharding::DocZigzag}) {
      Rng rng(2024);  // the same packings for both shardings
      double sum_ratio = 0, worst = 0, sum_docs = 0, sum_pad = 0;
      for (int p = 0; p < packings; ++p) {
        const std::vector<int32_t> begins = random_packing(T, rng);
        const AttentionMeta m = document_meta({begins}, T, cp, sh, true, true);
        std::vector<double> work(size_t(cp), 0.0);
        for (int r = 0; r < cp; ++r)
          for (int src = 0; src < cp; ++src) work[size_t(r)] += double(m.visible_pairs(r, src));
        double mx = 0, mean = 0;
        for (double w : work) mx = std::max(mx, w), mean += w / cp;
        sum_ratio += mx / mean;
        worst = std::max(worst, mx / mean);
        sum_docs += double(begins.size());
        int64_t pad = 0;
        for (int32_t t : m.rows[0].token) pad += t < 0;
        sum_pad += double(pad) / double(T);
      }
      std::printf("%s  {\"cp\": %d, \"sharding\": \"%s\", \"mean_max_over_mean\": %.6f, \"worst_max_over_mean\": %.6f, "
                  "\"mean_documents\": %.2f, \"mean_padding_fraction\": %.5f}",
                  first ? "" : ",\n", cp, cp_sharding_name(sh), sum_ratio / packings, worst, sum_docs / packings,
                  sum_pad / packings);
      first = false;
    }
  std::printf("\n]}\n");
  return 0;
}

// Forward + backward of one attention call over the whole sample, seconds (best of reps).
double time_attention(Ops& ops, int64_t T, const AttnMask& m, int reps) {
  const int64_t D = 64;
  auto alloc = [&](std::initializer_list<int64_t> dims) {
    Tensor t(nullptr, DType::F32, dims);
    t.ptr = ops.alloc(t.bytes());
    return t;
  };
  Tensor q = alloc({1, T, 1, D}), k = alloc({1, T, 1, D}), v = alloc({1, T, 1, D}), dout = alloc({1, T, 1, D});
  Tensor out = alloc({1, T, 1, D}), lse = alloc({1, 1, T}), dq = alloc({1, T, 1, D}), dk = alloc({1, T, 1, D}),
         dv = alloc({1, T, 1, D});
  Rng rng(7);
  for (Tensor* t : {&q, &k, &v, &dout})
    for (int64_t i = 0; i < t->numel(); ++i) t->data<float>()[i] = float(rng.normal());
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    Timer timer;
    ops.attention_forward(out, lse, q, k, v, m);
    ops.attention_backward(dq, dk, dv, dout, q, k, v, m, out, lse);
    best = std::min(best, timer.seconds());
  }
  for (Tensor* t : {&q, &k, &v, &dout, &out, &lse, &dq, &dk, &dv}) ops.free(t->ptr);
  return best;
}

int skip(int64_t T, int docs, int reps) {
  auto ops = make_cpu_ops(DType::F32, 64);
  std::vector<int32_t> begins;
  for (int d = 0; d < docs; ++d) begins.push_back(int32_t(T / docs * d));
  const AttentionMeta m = document_meta({begins}, T, 1, CpSharding::Zigzag, true, true);
  std::vector<int32_t> pos = m.positions(0), start = m.doc_starts(0);
  Tensor tp(pos.data(), DType::I32, {T}), ts(start.data(), DType::I32, {T});
  const double causal = time_attention(*ops, T, AttnMask{tp, tp, Tensor()}, reps);
  const double masked = time_attention(*ops, T, AttnMask{tp, tp, ts}, reps);
  const double fraction = double(m.visible_pairs(0, 0)) / (double(T) * double(T + 1) / 2);
  std::printf("{\"T\": %lld, \"documents\": %d, \"heads\": 1, \"head_dim\": 64, \"tile\": 64, \"reps\": %d, "
              "\"causal_s\": %.4f, \"masked_s\": %.4f, \"visible_pair_fraction\": %.5f, \"time_ratio\": %.5f, "
              "\"bound\": %.5f}\n",
              (long long)T, docs, reps, causal, masked, fraction, masked / causal, 2 * fraction);
  return masked <= 2 * fraction * causal ? 0 : 1;
}

}  // namespace
}  // namespace lct

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "";
  auto arg = [&](int i, long long d) { return argc > i ? std::atoll(argv[i]) : d; };
  if (what == "balance") return lct::balance(arg(2, 131072), int(arg(3, 100)));
  if (what == "skip") return lct::skip(arg(2, 32768), int(arg(3, 16)), int(arg(4, 3)));
  std::fprintf(stderr, "usage: bench_docmask balance [T] [PACKINGS] | skip [T] [DOCS] [REPS]\n");
  return 2;
}
