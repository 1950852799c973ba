// The communication interface: the collectives and paired point-to-point transfers lctrain uses,
// on the buffers of the compute backend (host memory for cpu + MPI; device memory for cuda +
// NCCL). Every communicator counts the bytes it sends to each peer, classified by link (same
// node, other node on the same rail, other node on another rail): the progress report, the tests
// and `--plan` all read these counters.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "parallel/layout.h"

namespace lct {

// Per-process byte counters, shared by all communicators of a rank.
class Traffic {
 public:
  explicit Traffic(const Topology* topo, int world_rank) : topo_(topo), me_(world_rank) {}
  enum Kind { P2P = 0, Collective = 1, AllToAll = 2 };
  void add(int world_dst, int64_t bytes, Kind kind);
  int64_t bytes(LinkClass c) const;            // everything sent over links of this class (a2a included)
  int64_t p2p_bytes_to(int world_dst) const;   // point-to-point bytes sent to one peer
  std::map<int, int64_t> p2p_peers() const;    // peer -> point-to-point bytes
  int64_t p2p_messages() const;
  int64_t collective_bytes() const;
  int64_t a2a_bytes() const;                   // all-to-all bytes sent (to other ranks)
  std::map<int, int64_t> a2a_peers() const;    // destination world rank -> all-to-all bytes
  void reset();

 private:
  const Topology* topo_;
  int me_;
  mutable std::mutex mu_;
  int64_t by_class_[4] = {0, 0, 0, 0};
  std::map<int, int64_t> p2p_, a2a_;
  int64_t p2p_msgs_ = 0, coll_ = 0, a2a_total_ = 0;
};

// A transfer in flight; wait() completes it (and is called by the destructor if needed).
class PendingTransfer {
 public:
  virtual ~PendingTransfer() = default;
  virtual void wait() = 0;
  // Seconds from start until the transfer completed, as seen by the progress thread (for the
  // overlap measurement); negative if unknown.
  virtual double transfer_seconds() const { return -1; }
};

enum class ReduceOp { Sum, Max };

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int world_rank_of(int r) const = 0;

  // In place over the group (f32/f64/i32 tensors).
  virtual void all_reduce(Tensor t, ReduceOp op = ReduceOp::Sum) = 0;
  // send holds size() equal parts; this rank receives the sum of part rank() in recv.
  virtual void reduce_scatter(const Tensor& send, Tensor recv) = 0;
  // recv holds size() parts; part i comes from rank i.
  virtual void all_gather(const Tensor& send, Tensor recv) = 0;
  virtual void broadcast(Tensor t, int root) = 0;
  virtual void barrier() = 0;
  // Non-blocking all_gather / reduce_scatter (same contracts and byte counts as the blocking
  // ones): recv holds the result, and send may be reused, once wait() returned. ZeRO-3 prefetches
  // the next layer's weights and reduce-scatters a layer's gradients while the next layer computes.
  // As for every collective, all ranks start them on a communicator in the same order.
  virtual std::unique_ptr<PendingTransfer> all_gather_async(const Tensor& send, Tensor recv) = 0;
  virtual std::unique_ptr<PendingTransfer> reduce_scatter_async(const Tensor& send, Tensor recv) = 0;
  // send and recv each hold size() equal contiguous parts (along dim 0, or flat): part j of send
  // goes to rank j, part i of recv comes from rank i (the self part is copied). Same dtype and
  // element count. Counted as Traffic::AllToAll: send.bytes() / size() to every other rank, by
  // link class; nothing for the self part. Blocking.
  virtual void all_to_all(const Tensor& send, Tensor recv) = 0;
  // Starts sending `send` to rank `dst` and receiving `recv` from rank `src` (ranks of this
  // group), both non-blocking.
  virtual std::unique_ptr<PendingTransfer> exchange(const Tensor& send, int dst, Tensor recv, int src, int tag) = 0;

  // Host scalars (small control values: losses, counts, flags).
  virtual double all_reduce_scalar(double x, ReduceOp op = ReduceOp::Sum) = 0;
};

}  // namespace lct
