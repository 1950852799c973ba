// The traffic a real run measured against --plan: `mpirun -np 8 lctrain DECK` reports per step the
// bytes its comm layer counted per link class (metrics.jsonl: bytes_*_total, p2p_pairs), and
// run_plan on the same deck must predict exactly those bytes; the ring's (source, destination)
// pairs must be layout.json's cp_next pairs. (test_plan_traffic checks the same on Llama +
// Optimizer directly, without the trainer.)
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "deck/deck.h"
#include "jobs_util.h"
#include "train/plan.h"

namespace lct {
namespace {

using test::mpirun;
using test::write_deck;

// The traffic the comm layer measured in a real run, per step, against --plan for the same deck.
void expect_measured_equals_plan(const std::string& name, const std::string& parallel) {
  SCOPED_TRACE(name);
  const std::string dir = test::scratch_dir(name);
  const std::string deck = write_deck(dir, parallel, 2);
  const auto r = test::run_command(mpirun(8) + test::lctrain() + " " + deck);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream f(dir + "/out/metrics.jsonl");
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(f, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("step") && !j.contains("event")) rows.push_back(j);
  }
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_TRUE(rows[0].contains("bytes_intra_node_total")) << "metrics.jsonl lost the trainer's traffic report";
  std::ostringstream out;
  const std::string plan_dir = dir + "/plan";
  run_plan(Deck::from_file(deck, {"--run.out_dir=" + plan_dir}), 8, 0, out);
  std::ifstream pf(plan_dir + "/plan.json");
  const auto predicted = nlohmann::json::parse(pf)["stages"][0]["predicted"];
  for (const auto& row : rows)
    for (const char* k : {"bytes_intra_node_total", "bytes_same_rail_total", "bytes_cross_rail_total"})
      EXPECT_EQ(row[k].get<int64_t>(), predicted[k].get<int64_t>()) << k << " at step " << row["step"];
  // All-to-all (parallel.cp_comm_type = a2a | a2a+p2p): the bytes and every (source, destination,
  // bytes) the comm layer counted are the plan's.
  ASSERT_TRUE(rows[0].contains("bytes_a2a_total")) << "metrics.jsonl lost the all-to-all bytes";
  for (const auto& row : rows) {
    EXPECT_EQ(row["bytes_a2a_total"].get<int64_t>(), predicted["bytes_a2a_total"].get<int64_t>())
        << "at step " << row["step"];
    std::set<std::vector<int64_t>> got, want;
    for (const auto& e : row["a2a_peers"]) got.insert(e.get<std::vector<int64_t>>());
    for (const auto& e : predicted["a2a_peers"]) want.insert(e.get<std::vector<int64_t>>());
    EXPECT_EQ(got, want) << "all-to-all (source, destination, bytes) at step " << row["step"];
  }
  // The ring's recorded (source, destination) pairs are layout.json's cp_next pairs.
  ASSERT_TRUE(rows[0].contains("p2p_pairs")) << "metrics.jsonl lost the ring's (source, destination) pairs";
  {
    std::ifstream lf(dir + "/out/layout.json");
    const auto layout = nlohmann::json::parse(lf);
    std::set<std::pair<int, int>> want, got;
    for (const auto& e : layout["ranks"])
      if (layout["cp_ring"].get<int>() > 1) want.emplace(e["rank"].get<int>(), e["cp_next"].get<int>());
    for (const auto& pr : rows[0]["p2p_pairs"]) got.emplace(pr[0].get<int>(), pr[1].get<int>());
    EXPECT_EQ(got, want);
  }
}

TEST(Jobs, MeasuredTrafficEqualsThePlan) {
  // The shapes: tp=2 cp=2 dp=2 and cp=4, on emulated nodes of 2 ranks (cross-node rings).
  expect_measured_equals_plan("jobs_traffic_tp2cp2", "tp = 2\ncp = 2\nranks_per_node = 2\nzero = 1\n");
  expect_measured_equals_plan("jobs_traffic_cp4", "cp = 4\nranks_per_node = 2\n");
}

TEST(Jobs, MeasuredAllToAllTrafficEqualsThePlan) {
  // Hierarchical cp on 8 ranks: cp 8 = U 2 x R 4 over 2 emulated nodes of 4 (the ring crosses
  // nodes, the all-to-all stays inside them), and tp 2 x cp 2 all-to-all only with ZeRO-1.
  expect_measured_equals_plan("jobs_traffic_cp8_u2",
                              "cp = 8\nranks_per_node = 4\ncp_comm_type = a2a+p2p\nhierarchical_cp_sizes = 2,4\n");
  expect_measured_equals_plan("jobs_traffic_tp2_a2a2",
                              "tp = 2\ncp = 2\nranks_per_node = 4\ncp_comm_type = a2a\nzero = 1\n");
}

}  // namespace
}  // namespace lct
