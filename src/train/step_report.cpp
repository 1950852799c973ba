#include "train/step_report.h"

#include <algorithm>
#include <vector>

#include <mpi.h>

#include "core/memory.h"
#include "deck/deck.h"
#include "parallel/gather.h"

namespace lct {
namespace {

int world_size(const ParallelContext& ctx) { return ctx.layout.topo.world_size; }

// One value per rank as a JSON array (complete on rank 0).
template <class T>
std::string gathered(ParallelContext& ctx, T mine, MPI_Datatype type) {
  std::vector<T> all(static_cast<size_t>(world_size(ctx)));
  MPI_Gather(&mine, 1, type, all.data(), 1, type, 0, ctx.world_mpi);
  std::string out = "[";
  for (size_t r = 0; r < all.size(); ++r) out += (r ? ", " : "") + format_number(double(all[r]));
  return out + "]";
}

int64_t total(ParallelContext& ctx, int64_t mine) {
  int64_t sum = 0;
  MPI_Reduce(&mine, &sum, 1, MPI_INT64_T, MPI_SUM, 0, ctx.world_mpi);
  return sum;
}

// [[source, destination], ...] of every point-to-point transfer, over all ranks.
std::string p2p_pairs(ParallelContext& ctx, const Traffic& tr) {
  std::vector<int64_t> mine;
  for (const auto& kv : tr.p2p_peers()) mine.push_back(kv.first);
  const auto per_rank = gather_on_root(ctx.world_mpi, mine);
  std::string out = "[";
  for (size_t r = 0; r < per_rank.size(); ++r)
    for (int64_t dst : per_rank[r]) out += str(out.size() > 1 ? ", " : "", "[", r, ", ", dst, "]");
  return out + "]";
}

// [[source, destination, bytes], ...] of every all-to-all destination, over all ranks.
std::string a2a_peers(ParallelContext& ctx, const Traffic& tr) {
  std::vector<int64_t> mine;
  for (const auto& kv : tr.a2a_peers()) mine.insert(mine.end(), {int64_t(kv.first), kv.second});
  const auto per_rank = gather_on_root(ctx.world_mpi, mine);
  std::string out = "[";
  for (size_t r = 0; r < per_rank.size(); ++r)
    for (size_t i = 0; i + 1 < per_rank[r].size(); i += 2)
      out += str(out.size() > 1 ? ", " : "", "[", r, ", ", per_rank[r][i], ", ", per_rank[r][i + 1], "]");
  return out + "]";
}

}  // namespace

void gather_memory(ParallelContext& ctx, Ops& ops, StepMetrics& m) {
  int64_t mine = peak_rss_bytes();
  m.peak_rss_per_rank.assign(static_cast<size_t>(world_size(ctx)), 0);
  MPI_Gather(&mine, 1, MPI_INT64_T, m.peak_rss_per_rank.data(), 1, MPI_INT64_T, 0, ctx.world_mpi);
  for (int64_t v : m.peak_rss_per_rank) m.peak_rss_bytes = std::max(m.peak_rss_bytes, v);
  int64_t dev = ops.peak_allocated_bytes();
  MPI_Allreduce(MPI_IN_PLACE, &dev, 1, MPI_INT64_T, MPI_MAX, ctx.world_mpi);
  m.peak_device_bytes = dev;
}

std::string memory_json(ParallelContext& ctx, Ops& ops) {
  auto by_kind = [&](const MemoryUse& u) {
    std::string out = "{";
    for (int k = 0; k < kMemKinds; ++k)
      out += str(k ? ", " : "", "\"", mem_name(Mem(k)), "\": ", gathered<int64_t>(ctx, u.kind_peak[k], MPI_INT64_T));
    return out + str(", \"total\": ", gathered<int64_t>(ctx, u.peak, MPI_INT64_T), "}");
  };
  const MemoryUse dev = ops.device_memory(), host = ops.host_memory();
  return str("\"device_peak_bytes\": ", by_kind(dev), ", \"host_peak_bytes\": ", by_kind(host),
             ", \"device_used_bytes\": ", gathered<int64_t>(ctx, ops.device_used_bytes(), MPI_INT64_T));
}

std::string samples_json(ParallelContext& ctx, int64_t mine, int64_t global_batch) {
  return str("\"samples_per_rank\": ", gathered<int64_t>(ctx, mine, MPI_INT64_T), ", \"global_batch\": ", global_batch);
}

std::string ring_and_traffic_json(ParallelContext& ctx, const RingStats& rs) {
  // Overlap: (t_comm + t_compute - t_ring) / t_comm, t_comm as seen by the progress threads.
  const double overlap = rs.transfer_s > 0 ? (rs.transfer_s + rs.compute_s - rs.ring_s) / rs.transfer_s : 0.0;
  const Traffic& tr = *ctx.traffic;
  return str("\"attn_score_elements\": ", gathered<int64_t>(ctx, rs.score_elements, MPI_INT64_T),
             ", \"attn_compute_s\": ", gathered<double>(ctx, rs.compute_s, MPI_DOUBLE),
             ", \"ring_s\": ", gathered<double>(ctx, rs.ring_s, MPI_DOUBLE),
             ", \"ring_transfer_s\": ", gathered<double>(ctx, rs.transfer_s, MPI_DOUBLE),
             ", \"ring_overlap\": ", gathered<double>(ctx, overlap, MPI_DOUBLE),
             ", \"ring_blocks_sent\": ", gathered<int64_t>(ctx, rs.blocks_sent, MPI_INT64_T),
             ", \"ring_hops_skipped\": ", gathered<int64_t>(ctx, rs.hops_skipped, MPI_INT64_T),
             ", \"bytes_intra_node\": ", gathered<int64_t>(ctx, tr.bytes(LinkClass::IntraNode), MPI_INT64_T),
             ", \"bytes_same_rail\": ", gathered<int64_t>(ctx, tr.bytes(LinkClass::SameRail), MPI_INT64_T),
             ", \"bytes_cross_rail\": ", gathered<int64_t>(ctx, tr.bytes(LinkClass::CrossRail), MPI_INT64_T),
             ", \"p2p_bytes\": ", gathered<int64_t>(ctx, tr.p2p_bytes_to(ctx.me().cp_next), MPI_INT64_T),
             ", \"bytes_intra_node_total\": ", total(ctx, tr.bytes(LinkClass::IntraNode)),
             ", \"bytes_same_rail_total\": ", total(ctx, tr.bytes(LinkClass::SameRail)),
             ", \"bytes_cross_rail_total\": ", total(ctx, tr.bytes(LinkClass::CrossRail)),
             ", \"p2p_pairs\": ", p2p_pairs(ctx, tr), ", \"bytes_a2a_total\": ", total(ctx, tr.a2a_bytes()),
             ", \"a2a_peers\": ", a2a_peers(ctx, tr), ", \"a2a_calls\": ", gathered<int64_t>(ctx, rs.a2a_calls, MPI_INT64_T));
}

}  // namespace lct
