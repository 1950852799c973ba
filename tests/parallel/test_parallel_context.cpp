// make_parallel_context under mpirun (2, 4 and 8 ranks): for every (tp, cp, ranks_per_node) the
// world allows, in both ring orders, the communicators hold exactly the layout's groups in the
// layout's order (checked by gathering world ranks through each communicator), and the ring
// neighbours of the ring communicator are the layout's cp_prev / cp_next; with all-to-all sizes
// U > 1 (issue 19) the cp communicator holds the whole group in cp_rank order, a2a the U group and
// ring the R ring.
#include <gtest/gtest.h>
#include <mpi.h>

#include "core/error.h"
#include "parallel/context.h"

namespace lct {
namespace {

int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// The group of `me` among `groups`.
const std::vector<int>& group_of(const std::vector<std::vector<int>>& groups, int me) {
  for (const auto& g : groups)
    for (int r : g)
      if (r == me) return g;
  static const std::vector<int> none;
  return none;
}

// Size, rank, world_rank_of, and the real membership: an all-gather of world ranks over the comm.
void expect_comm(Comm& c, const std::vector<int>& group, int me, const char* kind) {
  SCOPED_TRACE(kind);
  ASSERT_EQ(c.size(), int(group.size()));
  ASSERT_EQ(c.world_rank_of(c.rank()), me);
  for (int i = 0; i < c.size(); ++i) EXPECT_EQ(c.world_rank_of(i), group[size_t(i)]);
  std::vector<int32_t> got(group.size(), -1);
  int32_t mine = me;
  c.all_gather(Tensor(&mine, DType::I32, {1}), Tensor(got.data(), DType::I32, {int64_t(got.size())}));
  for (size_t i = 0; i < group.size(); ++i) EXPECT_EQ(got[i], group[i]) << "member " << i;
}

TEST(ParallelContext, CommunicatorsMatchTheLayout) {
  const int W = world_size();
  int me = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  std::vector<int> all(static_cast<size_t>(W));
  for (int r = 0; r < W; ++r) all[size_t(r)] = r;
  int configs = 0;
  for (int rpn = 1; rpn <= W; ++rpn)
    for (int tp = 1; tp <= W; tp *= 2)
      for (int cp = 1; cp <= W; cp *= 2)
      for (int U = 1; U <= cp; U *= 2) {
        if (W % rpn || rpn % tp || W % (tp * cp) || (U > 1 && rpn % (tp * U)))
          continue;
        for (bool aware : {true, false}) {
          SCOPED_TRACE(::testing::Message() << "tp " << tp << " cp " << cp << " U " << U << " rpn " << rpn
                                            << (aware ? " aware" : " naive"));
          ParallelConfig pc;
          pc.tp = tp;
          pc.cp = cp;
          pc.cp_a2a = U;
          pc.cp_ring = cp / U;
          pc.ranks_per_node = rpn;
          pc.ring_aware = aware;
          auto ctx = make_parallel_context(MPI_COMM_WORLD, pc);
          const Layout want = make_layout(make_topology(W, rpn), tp, cp, 0, aware, U);
          ASSERT_EQ(layout_json(ctx->layout), layout_json(want));
          ASSERT_EQ(ctx->world_rank, me);
          const RankPlace& p = ctx->me();
          expect_comm(*ctx->world, all, me, "world");
          expect_comm(*ctx->tp, group_of(want.tp_groups, me), me, "tp");
          expect_comm(*ctx->cp, group_of(want.cp_groups, me), me, "cp");
          expect_comm(*ctx->ring, group_of(want.cp_rings, me), me, "ring");
          expect_comm(*ctx->a2a, group_of(want.a2a_groups, me), me, "a2a");
          EXPECT_EQ(ctx->ring->rank(), p.ring_rank);
          EXPECT_EQ(ctx->a2a->rank(), p.a2a_rank);
          EXPECT_EQ(ctx->ring_comm()->size(), cp / U);
          EXPECT_EQ(ctx->a2a_comm() != nullptr, U > 1);
          expect_comm(*ctx->dp, group_of(want.dp_groups, me), me, "dp");
          expect_comm(*ctx->dpcp, group_of(want.dpcp_groups, me), me, "dp x cp");
          EXPECT_EQ(ctx->tp->rank(), p.tp_rank);
          EXPECT_EQ(ctx->cp->rank(), p.cp_rank);
          EXPECT_EQ(ctx->dp->rank(), p.dp_rank);
          EXPECT_EQ(ctx->dpcp->size(), want.dp * cp);
          EXPECT_EQ(ctx->ring_comm()->world_rank_of(ctx->cp_next()), p.cp_next);
          EXPECT_EQ(ctx->ring_comm()->world_rank_of(ctx->cp_prev()), p.cp_prev);
          ++configs;
        }
      }
  EXPECT_GE(configs, W == 2 ? 8 : 12);
}

TEST(ParallelContext, DetectedNodesAndErrorsAreCollective) {
  const int W = world_size();
  // ranks_per_node = 0: MPI_Comm_split_type finds one node (all ranks run on this host).
  ParallelConfig pc;
  pc.cp = W;
  auto ctx = make_parallel_context(MPI_COMM_WORLD, pc);
  EXPECT_EQ(ctx->layout.topo.num_nodes(), 1);
  EXPECT_EQ(ctx->layout.topo.ranks_per_node, W);
  EXPECT_EQ(ctx->layout.ring_hops(LinkClass::IntraNode), W > 1 ? W : 0);
  // Bad input fails on every rank alike (no rank left waiting in a split).
  ParallelConfig bad;
  bad.tp = 3;
  try {
    make_parallel_context(MPI_COMM_WORLD, bad);
    ADD_FAILURE() << "tp = 3 accepted with " << W << " ranks";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("parallel.tp"), std::string::npos) << e.what();
  }
  ParallelConfig odd;
  odd.ranks_per_node = W + 1;
  EXPECT_THROW(make_parallel_context(MPI_COMM_WORLD, odd), InputError);
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace
}  // namespace lct
