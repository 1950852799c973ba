// Hierarchical context parallelism through lctrain (issue 19): all-to-all over U ranks x ring over
// R (parallel.cp_comm_type = a2a | a2a+p2p, parallel.hierarchical_cp_sizes = U,R) reproduces the
// one-rank run over 5 AdamW steps (losses, gradient norms, final weights rel <= 1e-5) at cp 4 with
// U = 2 and U = 4, cp 8 with U = 2 on 2 emulated nodes, tp 2 x cp 4 with U = 2, n_kv_heads < U
// (K/V heads replicated), with recompute, with dp x ZeRO-1, and with packed documents
// (reset_attention_mask / reset_position_ids, doc_zigzag); every gradient tensor after one SGD
// step equals cp 1; metrics.jsonl counts the all-to-all bytes (3 calls forward, 6 backward per
// layer and micro-batch); a checkpoint written at U = 2 resumes at U = 4 and at p2p with the
// uninterrupted run's next losses (rel <= 1e-6); illegal splits and generation exit 2.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "equivalence.h"

namespace lct::test {
namespace {

std::vector<std::string> with(std::vector<std::string> v, const std::vector<std::string>& more) {
  v.insert(v.end(), more.begin(), more.end());
  return v;
}

// U,R over cp = U x R ("a2a" when R = 1).
std::vector<std::string> split(int U, int R) {
  if (R == 1) return {"--parallel.cp=" + std::to_string(U), "--parallel.cp_comm_type=a2a"};
  return {"--parallel.cp=" + std::to_string(U * R), "--parallel.cp_comm_type=a2a+p2p",
          "--parallel.hierarchical_cp_sizes=" + std::to_string(U) + "," + std::to_string(R)};
}

// The tiny deck: 2 layers, n_heads 4, n_kv_heads 2, seq_len 32, micro_batch 1, grad_accum 4.
TEST(Usp, SameTrajectoryAndWeightsAsOneRank) {
  const RunResult ref = run_case("usp_ref", 1, {});
  expect_learning(ref);
  {
    const RunResult got = run_case("usp_cp4_u2", 4, split(2, 2));
    expect_same_run(ref, got, "cp4 U2 R2");
    // metrics.jsonl: the all-to-all bytes, also in the link-class totals; 3 + 6 calls per layer
    // and micro-batch (2 layers x 4 micro-batches).
    const nlohmann::json& m = got.rows.at(1);
    ASSERT_TRUE(m.contains("bytes_a2a_total") && m.contains("a2a_peers")) << m.dump();
    for (const auto& c : m["a2a_calls"]) EXPECT_EQ(c.get<int64_t>(), 2 * 4 * 9);
    // Per rank and call: U - 1 = 1 part of send / 2; q, out, dq, dout: B Tl Hq D = 8 x 4 x 8
    // floats; kv, dkv: 2 B Tl Hkv D = 2 x 8 x 2 x 8 (no replication at U = 2).
    const int64_t qpart = 8 * 4 * 8 * 4 / 2, kvpart = 2 * 8 * 2 * 8 * 4 / 2;
    const int64_t per_rank = 2 * 4 * (6 * qpart + 3 * kvpart);
    EXPECT_EQ(m["bytes_a2a_total"].get<int64_t>(), 4 * per_rank);
    ASSERT_EQ(m["a2a_peers"].size(), 4u);  // each rank sends to its one a2a partner
    for (const auto& e : m["a2a_peers"]) {
      EXPECT_EQ(e[1].get<int>(), e[0].get<int>() ^ 1) << "a2a pairs are adjacent ranks";
      EXPECT_EQ(e[2].get<int64_t>(), per_rank);
    }
    EXPECT_GE(m["bytes_intra_node_total"].get<int64_t>(), m["bytes_a2a_total"].get<int64_t>());
  }
  expect_same_run(ref, run_case("usp_cp4_u4", 4, split(4, 1)), "cp4 U4 (a2a, K/V replicated x2)");
  expect_same_run(ref, run_case("usp_cp4_u2_recompute", 4, with(split(2, 2), {"--train.recompute=layer"})),
                  "cp4 U2 recompute");
  expect_same_run(ref, run_case("usp_cp2_u2_dp2_zero1", 4, with(split(2, 1), {"--train.grad_accum=2", "--parallel.zero=1"})),
                  "cp2 U2 x dp2 zero1");
  {
    const RunResult got = run_case("usp_cp8_u2_2nodes", 8, with(split(2, 4), {"--parallel.ranks_per_node=4"}));
    expect_same_run(ref, got, "cp8 U2 R4 on 2 nodes");
    // The a2a stays inside the nodes; the ring crosses them.
    const nlohmann::json& m = got.rows.at(1);
    EXPECT_GT(m["bytes_same_rail_total"].get<int64_t>(), 0);
    for (const auto& e : m["a2a_peers"]) EXPECT_EQ(e[0].get<int>() / 4, e[1].get<int>() / 4);
  }
  expect_same_run(ref,
                  run_case("usp_tp2_cp4_u2", 8,
                           with(split(2, 2), {"--parallel.tp=2", "--parallel.ranks_per_node=4", "--train.micro_batch=2",
                                              "--train.grad_accum=2"})),
                  "tp2 x cp4 U2 (K/V heads per tp rank 1: replicated x2)");
}

// n_kv_heads = 1 < U = 4 (MQA: every K/V head to all 4 ranks) and n_kv_heads = 4 = U (no replication).
TEST(Usp, KvHeadsFewerThanTheAllToAllGroup) {
  for (int nkv : {1, 4}) {
    const std::vector<std::string> model = {"--model.n_kv_heads=" + std::to_string(nkv)};
    const RunResult ref = run_case("usp_kv" + std::to_string(nkv) + "_ref", 1, model);
    expect_same_run(ref, run_case("usp_kv" + std::to_string(nkv) + "_cp4_u4", 4, with(model, split(4, 1))),
                    "n_kv_heads " + std::to_string(nkv) + " cp4 U4");
  }
}

// Packed documents: data.reset_attention_mask / reset_position_ids. With sequence zigzag the run
// equals cp 1; doc_zigzag pads every document to a multiple of 2 cp slots (and cuts the tail), so
// its reference is the same cp 4 layout on the ring (p2p), which test_docmask_equivalence checks
// against the documents run one by one.
TEST(Usp, DocumentMasksCompose) {
  const std::vector<std::string> docs = {"--data.eod_token=5", "--data.reset_attention_mask=true",
                                         "--data.reset_position_ids=true", "--train.seq_len=64"};
  const std::vector<std::string> zz = with(docs, {"--parallel.cp_sharding=zigzag"});
  const RunResult ref = run_case("usp_doc_ref", 1, zz);
  expect_same_run(ref, run_case("usp_doc_cp4_u4_zz", 4, with(zz, split(4, 1))), "docs cp4 U4 zigzag");
  expect_same_run(ref, run_case("usp_doc_cp4_u2_zz", 4, with(zz, split(2, 2))), "docs cp4 U2 R2 zigzag");
  const std::vector<std::string> dz = with(docs, {"--parallel.cp_sharding=doc_zigzag"});
  const RunResult ring = run_case("usp_doc_cp4_p2p_doczz", 4, with(dz, {"--parallel.cp=4"}));
  expect_same_run(ring, run_case("usp_doc_cp4_u2_doczz", 4, with(dz, split(2, 2))), "docs cp4 U2 R2 doc_zigzag");
  const RunResult u4 = run_case("usp_doc_cp4_u4_doczz", 4, with(dz, split(4, 1)));
  expect_same_run(ring, u4, "docs cp4 U4 doc_zigzag");
  // The ring's statistics are the R ring's: with R = 1 there is no hop to skip.
  int64_t skipped = 0;
  for (const auto& [step, row] : u4.rows)
    for (int64_t x : row.at("ring_hops_skipped").get<std::vector<int64_t>>()) skipped += x;
  EXPECT_EQ(skipped, 0) << "a ring of one position has no hops to skip";
}

// Every parameter's gradient after one SGD step (as test_cp_equivalence): g = (w0 - w1) / lr with
// w0 from two cp = 1 runs at lr a and 2a; plain (a = 1), and with document masks (sequence zigzag;
// a = 16: there the norm weights' gradients are ~1e-3, and at a = 1 a weight's fp32 rounding near
// 1.0 alone is 5e-5 of them, for the ring as for the all-to-all).
TEST(Usp, EveryGradientEqualsOneRank) {
  using Weights = std::map<std::string, std::vector<float>>;
  const std::vector<std::string> sgd = {"--optim.name=sgd", "--optim.weight_decay=0", "--train.grad_clip=0",
                                        "--train.steps=1", "--train.warmup_steps=0", "--train.lr_schedule=constant"};
  auto one_step = [&](const std::string& name, int np, const std::string& lr, const std::vector<std::string>& layout) {
    const std::string dir = scratch_dir(name);
    const std::string corpus = dir + "/corpus.bin";
    write_markov_corpus(corpus, 64, 20000, 7);
    std::vector<std::string> ov = with(sgd, layout);
    ov.insert(ov.end(), {"--train.lr=" + lr, "--checkpoint.resume=none"});
    CommandResult r = run_lctrain(np, dir, tiny_deck(corpus, dir + "/out"), ov);
    EXPECT_EQ(r.exit_code, 0) << name << ":\n" << r.output;
    return r.exit_code == 0 ? read_checkpoint_weights(checkpoint_path(dir + "/out", 1)) : Weights{};
  };
  const std::vector<std::string> docs = {"--data.eod_token=5", "--data.reset_attention_mask=true",
                                         "--data.reset_position_ids=true", "--train.seq_len=64",
                                         "--parallel.cp_sharding=zigzag"};
  for (const bool with_docs : {false, true}) {
    const std::vector<std::string> base = with_docs ? docs : std::vector<std::string>{};
    const std::string tag = with_docs ? "docs_" : "";
    const int a = with_docs ? 16 : 1;
    const Weights wa = one_step("uspg_" + tag + "ref_a", 1, std::to_string(a), base),
                  w2a = one_step("uspg_" + tag + "ref_2a", 1, std::to_string(2 * a), base);
    ASSERT_FALSE(wa.empty());
    auto grads = [&](const Weights& w1) {
      std::map<std::string, std::vector<double>> g;
      for (const auto& [name, v] : w1) {
        const auto& va = wa.at(name);
        const auto& vb = w2a.at(name);
        auto& out = g[name];  // a g (the scale cancels in the relative errors)
        for (size_t i = 0; i < v.size(); ++i) out.push_back((2.0 * va[i] - double(vb[i])) - double(v[i]));
      }
      return g;
    };
    const auto ref = grads(wa);
    struct L {
      std::string name;
      int np;
      std::vector<std::string> ov;
    };
    std::vector<L> layouts = {{"cp4_u2", 4, split(2, 2)}, {"cp4_u4", 4, split(4, 1)}};
    if (!with_docs) {
      layouts.push_back({"cp8_u2_2nodes", 8, with(split(2, 4), {"--parallel.ranks_per_node=4"})});
      layouts.push_back({"tp2_cp4_u2", 8, with(split(2, 2), {"--parallel.tp=2", "--parallel.ranks_per_node=4",
                                                            "--train.micro_batch=2", "--train.grad_accum=2"})});
    }
    for (const L& l : layouts) {
      const Weights w = one_step("uspg_" + tag + l.name, l.np, std::to_string(a), with(base, l.ov));
      ASSERT_EQ(w.size(), wa.size()) << tag << l.name;
      const auto got = grads(w);
      double worst = 0;
      std::string worst_name;
      for (const auto& [name, g] : ref) {
        ASSERT_TRUE(std::any_of(g.begin(), g.end(), [](double x) { return x != 0; })) << name << ": zero gradient";
        const double e = rel_error(got.at(name), g);
        EXPECT_LE(e, 1e-5) << tag << l.name << ": gradient of " << name;
        if (e > worst) worst = e, worst_name = name;
      }
      std::printf("%s%s: %zu gradient tensors, worst relative error %.2e (%s)\n", tag.c_str(), l.name.c_str(), ref.size(),
                  worst, worst_name.c_str());
    }
  }
}

// A checkpoint written at U = 2 after step 3 resumes at U = 4 and at p2p (cp 4) and gives the
// uninterrupted U = 2 run's losses of steps 4 and 5 (rel <= 1e-6).
TEST(Usp, CheckpointResumesAtAnotherAllToAllSize) {
  const RunResult full = run_case("usp_resume_full", 4, split(2, 2));
  ASSERT_EQ(full.losses.size(), 5u);
  for (const auto& [name, resume] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"u4", split(4, 1)}, {"p2p", {"--parallel.cp=4"}}}) {
    const std::string dir = scratch_dir("usp_resume_" + name), corpus = dir + "/corpus.bin";
    write_markov_corpus(corpus, 64, 20000, 7);
    const std::string deck = tiny_deck(corpus, dir + "/out");
    const CommandResult first =
        run_lctrain(4, dir, deck, with(split(2, 2), {"--checkpoint.resume=none"}), "LCT_DEBUG_STOP_AFTER_STEP=3");
    ASSERT_EQ(first.exit_code, 75) << name << "\n" << first.output;
    const CommandResult second = run_lctrain(4, dir, deck, resume);
    ASSERT_EQ(second.exit_code, 0) << name << "\n" << second.output;
    EXPECT_NE(second.output.find("resuming stage 1 at step 4"), std::string::npos) << name << "\n" << second.output;
    const auto rows = read_metrics(dir + "/out");
    for (int64_t s : {4, 5}) {
      ASSERT_TRUE(rows.count(s)) << name << " step " << s;
      const double a = rows.at(s)["loss"].get<double>(), b = full.losses[size_t(s - 1)];
      EXPECT_LE(std::abs(a - b) / std::abs(b), 1e-6) << name << " step " << s << ": " << a << " vs " << b;
    }
  }
}

void expect_exit_two(const std::string& name, int np, const std::vector<std::string>& args, const std::string& says,
                     const std::string& extra_env = "") {
  const std::string dir = scratch_dir(name);
  write_markov_corpus(dir + "/corpus.bin", 64, 20000, 7);
  const CommandResult r = run_lctrain(np, dir, tiny_deck(dir + "/corpus.bin", dir + "/out"),
                                      with(args, {"--checkpoint.resume=none"}), extra_env);
  EXPECT_EQ(r.exit_code, 2) << name << ":\n" << r.output;
  const size_t at = r.output.find(says);
  EXPECT_NE(at, std::string::npos) << name << ":\n" << r.output;
  if (at != std::string::npos) {
    EXPECT_EQ(r.output.find(says, at + 1), std::string::npos) << name << ": said more than once\n" << r.output;
  }
}

TEST(Usp, IllegalSplitsExitTwoNamingTheKeys) {
  // U does not divide the query heads (4 heads, U = 8 with cp 8).
  expect_exit_two("usp_err_heads", 2, with(split(8, 1), {"--model.n_heads=4"}), "model.n_heads");
  // Hkv = 2 and U = 4 ... legal; Hkv = 3, U = 2: neither divides the other (6 heads, 3 K/V heads).
  expect_exit_two("usp_err_kv", 2, with(split(2, 1), {"--model.n_heads=6", "--model.n_kv_heads=3", "--model.dim=48"}),
                  "model.n_kv_heads");
  // U x R != cp; a2a+p2p without sizes; sizes inconsistent with p2p.
  expect_exit_two("usp_err_uxr", 2,
                  {"--parallel.cp=2", "--parallel.cp_comm_type=a2a+p2p", "--parallel.hierarchical_cp_sizes=2,2"},
                  "U x R must equal cp");
  expect_exit_two("usp_err_nosizes", 2, {"--parallel.cp=2", "--parallel.cp_comm_type=a2a+p2p"},
                  "needs parallel.hierarchical_cp_sizes");
  expect_exit_two("usp_err_p2p", 2, {"--parallel.cp=2", "--parallel.hierarchical_cp_sizes=2,1"},
                  "does not match parallel.cp_comm_type = p2p");
  // tp x U beyond a node (2 emulated nodes of 1 rank).
  expect_exit_two("usp_err_node", 2, with(split(2, 1), {"--parallel.ranks_per_node=1"}), "exceeds the ranks per node");
}

TEST(Usp, GenerationSaysItNeedsTheRing) {
  const std::string dir = scratch_dir("usp_gen");
  write_markov_corpus(dir + "/corpus.bin", 64, 20000, 7);
  const std::string deck = tiny_deck(dir + "/corpus.bin", dir + "/out");
  const CommandResult train = run_lctrain(2, dir, deck, with(split(2, 1), {"--train.steps=1", "--checkpoint.resume=none"}));
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const std::string ck = checkpoint_path(dir + "/out", 1);
  // run_lctrain puts the deck first; --generate and its arguments follow as further words.
  const CommandResult gen = run_lctrain(2, dir, deck, with(split(2, 1), {"--generate", "--checkpoint", ck, "--prompt-ids", "1,2,3"}));
  EXPECT_EQ(gen.exit_code, 2) << gen.output;
  const std::string says = "generation does not support parallel.cp_comm_type = a2a";
  const size_t at = gen.output.find(says);
  EXPECT_NE(at, std::string::npos) << gen.output;
  if (at != std::string::npos) {
    EXPECT_EQ(gen.output.find(says, at + 1), std::string::npos) << "said once\n" << gen.output;
  }
  // --eval with a RULER task (scored by generation) says the same; NIAH (teacher-forced) would run.
  const CommandResult ev = run_lctrain(2, dir, deck, with(split(2, 1), {"--eval", "--checkpoint", ck, "--eval.tasks=vt"}));
  EXPECT_EQ(ev.exit_code, 2) << ev.output;
  EXPECT_NE(ev.output.find(says), std::string::npos) << ev.output;
}

}  // namespace
}  // namespace lct::test
