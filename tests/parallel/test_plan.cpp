// run_plan (lctrain --plan) in-process: the Gradient 8B 1M-token deck on 512 ranks (0 cross-rail
// hops aware, more naive, fits an L40S with zero = 1 and recompute), layout.json / plan.json
// contents, world size and ranks per node from SLURM's variables, and the input errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "deck/config.h"
#include "model/params.h"
#include "parallel/planner.h"
#include "test_util.h"
#include "train/plan.h"

namespace lct {
namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << path;
  return nlohmann::json::parse(f);
}

// Clears SLURM's variables for the test and restores them after.
class SlurmEnv {
 public:
  SlurmEnv() {
    for (const char* k : kKeys)
      if (const char* v = std::getenv(k)) saved_.emplace_back(k, v);
    for (const char* k : kKeys) unsetenv(k);
  }
  ~SlurmEnv() {
    for (const char* k : kKeys) unsetenv(k);
    for (const auto& kv : saved_) setenv(kv.first.c_str(), kv.second.c_str(), 1);
  }

 private:
  static constexpr const char* kKeys[3] = {"SLURM_NTASKS", "SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE"};
  std::vector<std::pair<std::string, std::string>> saved_;
};

const char* kTiny =
    "[model]\nvocab_size = 64\ndim = 32\nn_layers = 2\nn_heads = 8\nn_kv_heads = 4\nhead_dim = 4\nffn_dim = 24\n"
    "[train]\nseq_len = 64\n[parallel]\ntp = 2\ncp = 4\n";

std::string plan_text(const Deck& d, int world, int rpn, int stage = 0) {
  std::ostringstream os;
  run_plan(d, world, rpn, os, stage);
  return os.str();
}

TEST(Plan, Gradient8B1MTokensOn512Ranks) {
  SlurmEnv env;
  const std::string dir = test::scratch_dir("plan_gradient");
  const Deck d = Deck::from_file(test::source_dir() + "/input/gradient-8b-1048k-plan.deck", {"--run.out_dir=" + dir});
  const std::string out = plan_text(d, 512, 8);
  EXPECT_NE(out.find("512 ranks (from --world-size)"), std::string::npos) << out;
  EXPECT_NE(out.find("ranks per node: 8 (from --ranks-per-node)"), std::string::npos) << out;
  EXPECT_NE(out.find("tp=4 cp=8 dp=16"), std::string::npos) << out;
  const auto plan = read_json(dir + "/plan.json");
  const auto& st = plan["stages"][0];
  EXPECT_EQ(st["aware"]["ring_hops"]["cross_rail"], 0);
  EXPECT_EQ(st["naive"]["ring_hops"]["cross_rail"], 256);
  EXPECT_EQ(st["aware"]["per_step"]["bytes_cross_rail_total"], 0);
  EXPECT_GT(st["naive"]["per_step"]["bytes_cross_rail_total"].get<int64_t>(), 0);
  EXPECT_LT(st["aware"]["step_seconds"].get<double>(), st["naive"]["step_seconds"].get<double>());
  // zero = 1 and recompute = layer fit a 45 GiB L40S; the weights are a quarter of 8.03B in bf16.
  EXPECT_LT(st["memory_bytes"]["total"].get<double>(), 45.0 * (1 << 30));
  EXPECT_EQ(st["memory_bytes"]["weights"].get<int64_t>(), 2 * params_per_rank(config_from_deck(resolved_stage(d, 1)).model, 4));
  EXPECT_EQ(total_params(config_from_deck(resolved_stage(d, 1)).model), 8030261248);  // Llama-3-8B
  // layout.json: the run's layout (aware ring), one entry per rank.
  const auto layout = read_json(dir + "/layout.json");
  ASSERT_EQ(layout["ranks"].size(), 512u);
  EXPECT_EQ(layout["ring_order"], "aware");
  EXPECT_EQ(layout.dump(), nlohmann::json::parse(layout_json(make_layout(make_topology(512, 8), 4, 8, 0, true))).dump());
  for (const auto& r : layout["ranks"]) {
    const auto& next = layout["ranks"][r["cp_next"].get<size_t>()];
    EXPECT_TRUE(r["node"] == next["node"] || r["local_rank"] == next["local_rank"]) << "a cross-rail ring hop: " << r;
  }
}

TEST(Plan, PredictionInPlanJsonIsThePlannersTraffic) {
  SlurmEnv env;
  const std::string dir = test::scratch_dir("plan_tiny");
  const Deck d = Deck::from_text(kTiny, "tiny.deck", {"--run.out_dir=" + dir, "--parallel.zero=1"});
  const std::string out = plan_text(d, 16, 4);
  const auto st = read_json(dir + "/plan.json")["stages"][0];
  const Config c = config_from_deck(resolved_stage(d, 1));
  const Layout L = make_layout(make_topology(16, 4), 2, 4, 0, true);
  const TrafficEstimate t = estimate_traffic(c, L);
  EXPECT_EQ(st["predicted"]["bytes_intra_node_total"], t.total[LinkClass::IntraNode]);
  EXPECT_EQ(st["predicted"]["bytes_same_rail_total"], t.total[LinkClass::SameRail]);
  EXPECT_EQ(st["predicted"]["bytes_cross_rail_total"], t.total[LinkClass::CrossRail]);
  ASSERT_EQ(st["aware"]["bytes_per_rank"].size(), 16u);
  EXPECT_EQ(st["aware"]["bytes_per_rank"][5][1], t.ranks[5].bytes[LinkClass::SameRail]);
  // Every rank sends its ring blocks to cp_next and nowhere else.
  EXPECT_EQ(st["aware"]["p2p_pairs"].size(), 16u);
  for (const auto& pr : st["aware"]["p2p_pairs"]) EXPECT_EQ(pr[1], L.ranks[pr[0].get<size_t>()].cp_next);
  for (const char* s : {"memory per rank", "ring attention (cp)", "tensor parallel (tp)", "gradients (dp x cp)",
                        "estimated step time", "model FLOPs per token", "naive ring order"})
    EXPECT_NE(out.find(s), std::string::npos) << s << "\n" << out;
}

TEST(Plan, SlurmVariablesGiveTheShape) {
  SlurmEnv env;
  const std::string dir = test::scratch_dir("plan_slurm");
  const Deck d = Deck::from_text(kTiny, "tiny.deck", {"--run.out_dir=" + dir});
  setenv("SLURM_NTASKS", "16", 1);
  setenv("SLURM_TASKS_PER_NODE", "4(x4)", 1);
  std::string out = plan_text(d, 0, 0);
  EXPECT_NE(out.find("16 ranks (from SLURM_NTASKS"), std::string::npos) << out;
  EXPECT_NE(out.find("ranks per node: 4 (from SLURM_TASKS_PER_NODE"), std::string::npos) << out;
  setenv("SLURM_NTASKS_PER_NODE", "8", 1);
  out = plan_text(d, 0, 0);
  EXPECT_NE(out.find("ranks per node: 8 (from SLURM_NTASKS_PER_NODE"), std::string::npos) << out;
  // Given values win over SLURM's.
  out = plan_text(d, 32, 2);
  EXPECT_NE(out.find("32 ranks (from --world-size)"), std::string::npos) << out;
  EXPECT_NE(out.find("ranks per node: 2 (from --ranks-per-node)"), std::string::npos) << out;
  EXPECT_EQ(read_json(dir + "/layout.json")["ranks"].size(), 32u);
}

TEST(Plan, MultiStageDeckWritesEachStagesLayout) {
  SlurmEnv env;
  const std::string dir = test::scratch_dir("plan_stages");
  const std::string text = std::string(kTiny) + "[stage1]\ntrain.seq_len = 64\n[stage2]\ntrain.seq_len = 128\nparallel.cp = 8\n";
  const Deck d = Deck::from_text(text, "stages.deck", {"--run.out_dir=" + dir});
  const std::string out = plan_text(d, 16, 8);
  EXPECT_NE(out.find("stage 2 of 2: seq_len 128"), std::string::npos) << out;
  EXPECT_EQ(read_json(dir + "/layout-stage1.json")["cp"], 4);
  EXPECT_EQ(read_json(dir + "/layout-stage2.json")["cp"], 8);
  EXPECT_EQ(read_json(dir + "/layout.json")["cp"], 8);
  EXPECT_EQ(read_json(dir + "/plan.json")["stages"].size(), 2u);
}

// A run's folder keeps its own layout.json (--plan overwrote it): there the plan writes into plan/.
TEST(Plan, ARunsFolderKeepsItsLayout) {
  SlurmEnv env;
  const std::string dir = test::scratch_dir("plan_run_folder");
  std::ofstream(dir + "/layout.json") << "{\"world_size\": 1}\n";
  std::ofstream(dir + "/metrics.jsonl") << "{}\n";
  const Deck d = Deck::from_text(kTiny, "tiny.deck", {"--run.out_dir=" + dir});
  const std::string out = plan_text(d, 16, 8);
  EXPECT_NE(out.find("holds a run: its layout.json stays, the plan's files go to " + dir + "/plan"), std::string::npos) << out;
  EXPECT_EQ(read_json(dir + "/layout.json")["world_size"], 1);
  EXPECT_EQ(read_json(dir + "/plan/layout.json")["world_size"], 16);
  EXPECT_EQ(read_json(dir + "/plan/plan.json")["world_size"], 16);
}

TEST(Plan, InputErrorsSayWhatToChange) {
  SlurmEnv env;
  const std::string dir = test::scratch_dir("plan_errors");
  struct Bad {
    std::vector<std::string> overrides;
    int world, rpn;
    const char* needle;
  };
  for (const Bad& b : {
           Bad{{}, 0, 0, "--world-size"},
           Bad{{}, 16, 3, "does not divide the world size 16"},
           Bad{{"--parallel.tp=3"}, 24, 3, "must divide model.n_heads"},
           Bad{{"--parallel.cp=8", "--train.seq_len=40"}, 16, 2, "2 * parallel.cp"},
           Bad{{"--parallel.dp=3"}, 16, 4, "parallel.dp = auto"},
           Bad{{"--parallel.tp=4"}, 16, 2, "must sit inside one node"},
           Bad{{"--cluster.cross_rail_penalty=0.5"}, 16, 4, "cluster.cross_rail_penalty"},
           Bad{{"--parallel.rail_map=0,1"}, 16, 4, "parallel.rail_map"},
           Bad{{"--train.offload=activations", "--train.recompute=none"}, 16, 4, "set train.recompute = layer"},
       }) {
    std::vector<std::string> ov = b.overrides;
    ov.push_back("--run.out_dir=" + dir);
    const Deck d = Deck::from_text(kTiny, "tiny.deck", ov);
    try {
      plan_text(d, b.world, b.rpn);
      ADD_FAILURE() << "no error for " << b.needle;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(b.needle), std::string::npos) << e.what();
    }
  }
}

TEST(Planner, ParameterCountsMatchTheParamTable) {
  ModelConfig m;
  m.vocab_size = 96;
  m.dim = 48;
  m.n_layers = 3;
  m.n_heads = 8;
  m.n_kv_heads = 4;
  m.head_dim = 6;
  m.ffn_dim = 40;
  for (bool tied : {false, true})
    for (int tp : {1, 2, 4}) {
      m.tie_embeddings = tied;
      for (int r = 0; r < tp; ++r) EXPECT_EQ(params_per_rank(m, tp), ParamTable::build(m, tp, r).total) << tied << tp;
    }
  // Llama-3-8B: 8.03B parameters, 7.50B of them in matmuls (all but the embedding lookup).
  const Config c = config_from_deck(resolved_stage(
      Deck::from_file(test::source_dir() + "/input/gradient-8b-1048k-plan.deck", {"--train.seq_len=8192"}), 1));
  EXPECT_EQ(total_params(c.model), 8030261248);
  EXPECT_EQ(matmul_params(c.model), 8030261248 - 128256 * 4096 - 65 * 4096);
  EXPECT_DOUBLE_EQ(model_flops_per_token(c.model, 8192), 6.0 * 7504658432 + 12.0 * 32 * 4096 * 8193 / 2);
}

TEST(Planner, ClusterPresetsAndOverrides) {
  ClusterConfig cc;
  ClusterModel h = make_cluster_model(cc);
  EXPECT_EQ(h.preset, "h100");
  EXPECT_DOUBLE_EQ(h.bandwidth(LinkClass::IntraNode), 450e9);
  EXPECT_DOUBLE_EQ(h.bandwidth(LinkClass::SameRail), 50e9);
  EXPECT_DOUBLE_EQ(h.bandwidth(LinkClass::CrossRail), 25e9);
  EXPECT_NEAR(h.device_tflops, 0.4 * 989, 1e-9);
  cc.preset = "l40s";
  cc.inter_node_gbps = 50;
  cc.cross_rail_penalty = 4;
  cc.device_tflops = 181;
  ClusterModel l = make_cluster_model(cc);
  EXPECT_DOUBLE_EQ(l.bandwidth(LinkClass::IntraNode), 25e9);
  EXPECT_DOUBLE_EQ(l.bandwidth(LinkClass::CrossRail), 12.5e9);
  EXPECT_NEAR(l.mfu, 0.5, 1e-3);
  EXPECT_EQ(l.gpus_per_node, 8);
  EXPECT_EQ(dtype_sizes("cuda").act, 2);
  EXPECT_EQ(dtype_sizes("cpu").act, 4);
}

TEST(Planner, StepTimeAddsUpAndAwareIsNotSlower) {
  const Deck d = Deck::from_text(kTiny, "tiny.deck", {"--train.seq_len=4096", "--run.device=cuda"});
  const Config c = config_from_deck(resolved_stage(d, 1));
  const ClusterModel m = make_cluster_model(c.cluster);
  const Topology topo = make_topology(32, 4);
  const Layout a = make_layout(topo, 2, 4, 0, true), n = make_layout(topo, 2, 4, 0, false);
  const TimeEstimate ta = estimate_time(c, a, estimate_traffic(c, a), m);
  const TimeEstimate tn = estimate_time(c, n, estimate_traffic(c, n), m);
  EXPECT_NEAR(ta.step_s, ta.compute_s + ta.tp_s + ta.ring_exposed_s + ta.grad_s, 1e-12);
  EXPECT_LE(ta.ring_exposed_s, ta.ring_transfer_s);
  EXPECT_GT(n.ring_hops(LinkClass::CrossRail), 0);
  EXPECT_LT(ta.step_s, tn.step_s);
  EXPECT_DOUBLE_EQ(ta.tokens_per_step, 4 * 4096.0);  // micro_batch 1 x dp 4 sequences
  EXPECT_GT(ta.mfu, 0);
  EXPECT_LT(ta.mfu, m.mfu);  // recompute-free, but communication and the LM-head recompute cost
}

}  // namespace
}  // namespace lct
