// The communication interface on MPI (cpu backend: buffers are host memory).
#pragma once

#include <mpi.h>

#include "parallel/comm.h"

namespace lct {

class MpiComm final : public Comm {
 public:
  // Takes ownership of `comm` (freed unless it is MPI_COMM_WORLD). world_ranks[i] is the world
  // rank of member i. progress_thread: complete point-to-point transfers on a helper thread so
  // they progress while this thread computes (needs MPI_THREAD_MULTIPLE).
  MpiComm(MPI_Comm comm, std::vector<int> world_ranks, Traffic* traffic, bool progress_thread);
  ~MpiComm() override;
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return int(world_ranks_.size()); }
  int world_rank_of(int r) const override { return world_ranks_[r]; }
  MPI_Comm raw() const { return comm_; }

  void all_reduce(Tensor t, ReduceOp op) override;
  void reduce_scatter(const Tensor& send, Tensor recv) override;
  void all_gather(const Tensor& send, Tensor recv) override;
  std::unique_ptr<PendingTransfer> all_gather_async(const Tensor& send, Tensor recv) override;
  std::unique_ptr<PendingTransfer> reduce_scatter_async(const Tensor& send, Tensor recv) override;
  void broadcast(Tensor t, int root) override;
  void barrier() override;
  void all_to_all(const Tensor& send, Tensor recv) override;
  std::unique_ptr<PendingTransfer> exchange(const Tensor& send, int dst, Tensor recv, int src, int tag) override;
  double all_reduce_scalar(double x, ReduceOp op) override;

  // Byte accounting shared with communicators that wrap this one (NCCL): a collective is counted
  // as a ring algorithm sends it (to the next rank of the group); a point-to-point to rank dst.
  void count_collective(int64_t bytes) { count_ring(bytes); }
  void count_p2p(int dst, int64_t bytes);
  // An all-to-all with parts of part_bytes: part_bytes to every other rank of the group.
  void count_a2a(int64_t part_bytes);

 private:
  void count_ring(int64_t bytes);
  MPI_Comm comm_;
  std::vector<int> world_ranks_;
  int rank_ = 0;
  Traffic* traffic_;
  bool progress_thread_;
};

// The communicator of the group containing this rank: `groups` partitions the world ranks; each
// group lists its members in the order that defines their rank in the new communicator.
std::unique_ptr<MpiComm> split_comm(MPI_Comm world, const std::vector<std::vector<int>>& groups, Traffic* traffic,
                                    bool progress_thread);

}  // namespace lct
