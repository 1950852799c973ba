#include "parallel/mpi_comm.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/timer.h"

namespace lct {
namespace {

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I32: return MPI_INT;
    case DType::BF16: return MPI_UINT16_T;
  }
  return MPI_BYTE;
}

int checked_count(int64_t n) {
  LCT_CHECK(n <= INT_MAX, "MPI message of ", n, " elements exceeds INT_MAX");
  return int(n);
}

// Requests in flight (a paired isend/irecv, or one non-blocking collective); with a progress
// thread the wait runs there so the transfer advances while the caller computes (without one, MPI
// progresses only inside MPI calls).
class MpiPending final : public PendingTransfer {
 public:
  MpiPending(const MPI_Request* reqs, int n, bool threaded) : n_(n), threaded_(threaded) {
    for (int i = 0; i < n_; ++i) reqs_[i] = reqs[i];
    t0_ = now_seconds();
    if (threaded_)
      thread_ = std::thread([this] {
        MPI_Waitall(n_, reqs_, MPI_STATUSES_IGNORE);
        seconds_ = now_seconds() - t0_;
      });
  }
  ~MpiPending() override { wait(); }
  void wait() override {
    if (done_) return;
    if (threaded_) {
      thread_.join();
    } else {
      MPI_Waitall(n_, reqs_, MPI_STATUSES_IGNORE);
      seconds_ = now_seconds() - t0_;
    }
    done_ = true;
  }
  double transfer_seconds() const override { return seconds_; }

 private:
  MPI_Request reqs_[2];
  int n_;
  bool threaded_, done_ = false;
  double t0_ = 0, seconds_ = -1;
  std::thread thread_;
};

}  // namespace

MpiComm::MpiComm(MPI_Comm comm, std::vector<int> world_ranks, Traffic* traffic, bool progress_thread)
    : comm_(comm), world_ranks_(std::move(world_ranks)), traffic_(traffic), progress_thread_(progress_thread) {
  MPI_Comm_rank(comm_, &rank_);
  int n = 0;
  MPI_Comm_size(comm_, &n);
  LCT_CHECK(n == int(world_ranks_.size()), "communicator size ", n, " vs ", world_ranks_.size());
}

MpiComm::~MpiComm() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiComm::count_ring(int64_t bytes) {
  if (traffic_ && size() > 1) traffic_->add(world_ranks_[(rank_ + 1) % size()], bytes, Traffic::Collective);
}

void MpiComm::count_p2p(int dst, int64_t bytes) {
  if (traffic_) traffic_->add(world_ranks_[dst], bytes, Traffic::P2P);
}

void MpiComm::count_a2a(int64_t part_bytes) {
  if (!traffic_) return;
  for (int j = 0; j < size(); ++j)
    if (j != rank_) traffic_->add(world_ranks_[j], part_bytes, Traffic::AllToAll);
}

void MpiComm::all_to_all(const Tensor& send, Tensor recv) {
  const int P = size();
  LCT_CHECK(send.numel() == recv.numel() && send.dtype == recv.dtype && send.numel() % P == 0,
            "all_to_all sizes: sending ", send.numel(), " elements, receiving ", recv.numel(), " over ", P, " ranks");
  const size_t part = send.bytes() / size_t(P);
  const char* s = static_cast<const char*>(send.ptr);
  char* r = static_cast<char*>(recv.ptr);
  if (r + rank_ * part != s + rank_ * part) std::memcpy(r + rank_ * part, s + rank_ * part, part);
  if (P == 1 || part == 0) return;
  LCT_CHECK(r + send.bytes() <= s || s + send.bytes() <= r, "all_to_all cannot run in place");
  // Point-to-point pairs in chunks of at most 1 GiB (no int overflow at any message size).
  constexpr size_t kChunk = size_t(1) << 30;
  constexpr int kTagA2A = 201;
  std::vector<MPI_Request> reqs;
  reqs.reserve(size_t(2 * (P - 1)) * ((part + kChunk - 1) / kChunk));
  for (int k = 1; k < P; ++k) {
    const int to = (rank_ + k) % P, from = (rank_ + P - k) % P;
    for (size_t off = 0; off < part; off += kChunk) {
      const int n = int(std::min(kChunk, part - off));
      reqs.emplace_back();
      MPI_Irecv(r + from * part + off, n, MPI_BYTE, from, kTagA2A, comm_, &reqs.back());
      reqs.emplace_back();
      MPI_Isend(s + to * part + off, n, MPI_BYTE, to, kTagA2A, comm_, &reqs.back());
    }
  }
  MPI_Waitall(int(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE);
  count_a2a(int64_t(part));
}

void MpiComm::all_reduce(Tensor t, ReduceOp op) {
  LCT_CHECK(t.dtype != DType::BF16, "MPI cannot reduce bf16 (host buffers are f32/f64; device comms widen bf16)");
  if (size() == 1) return;
  const int64_t n = t.numel();
  const size_t es = dtype_size(t.dtype);
  for (int64_t off = 0; off < n; off += INT_MAX / 2) {
    const int64_t cnt = std::min<int64_t>(INT_MAX / 2, n - off);
    MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(t.ptr) + off * es, int(cnt), mpi_type(t.dtype),
                  op == ReduceOp::Sum ? MPI_SUM : MPI_MAX, comm_);
  }
  count_ring(2 * int64_t(t.bytes()) * (size() - 1) / size());
}

void MpiComm::reduce_scatter(const Tensor& send, Tensor recv) {
  LCT_CHECK(send.numel() == recv.numel() * size() && send.dtype == recv.dtype, "reduce_scatter sizes");
  LCT_CHECK(send.dtype != DType::BF16, "MPI cannot reduce bf16");
  if (size() == 1) {
    if (recv.ptr != send.ptr) std::memcpy(recv.ptr, send.ptr, recv.bytes());
    return;
  }
  MPI_Reduce_scatter_block(send.ptr, recv.ptr, checked_count(recv.numel()), mpi_type(recv.dtype), MPI_SUM, comm_);
  count_ring(int64_t(send.bytes()) * (size() - 1) / size());
}

void MpiComm::all_gather(const Tensor& send, Tensor recv) {
  LCT_CHECK(recv.numel() == send.numel() * size() && send.dtype == recv.dtype, "all_gather sizes");
  if (size() == 1) {
    if (recv.ptr != send.ptr) std::memcpy(recv.ptr, send.ptr, recv.bytes());
    return;
  }
  const bool in_place = static_cast<const char*>(send.ptr) == static_cast<char*>(recv.ptr) + rank_ * send.bytes();
  MPI_Allgather(in_place ? MPI_IN_PLACE : send.ptr, checked_count(send.numel()), mpi_type(send.dtype), recv.ptr,
                checked_count(send.numel()), mpi_type(send.dtype), comm_);
  count_ring(int64_t(recv.bytes()) * (size() - 1) / size());
}

namespace {
class DonePending final : public PendingTransfer {
 public:
  void wait() override {}
  double transfer_seconds() const override { return 0; }
};
}  // namespace

std::unique_ptr<PendingTransfer> MpiComm::all_gather_async(const Tensor& send, Tensor recv) {
  LCT_CHECK(recv.numel() == send.numel() * size() && send.dtype == recv.dtype, "all_gather sizes");
  if (size() == 1) {
    all_gather(send, recv);
    return std::make_unique<DonePending>();
  }
  const bool in_place = static_cast<const char*>(send.ptr) == static_cast<char*>(recv.ptr) + rank_ * send.bytes();
  MPI_Request req;
  MPI_Iallgather(in_place ? MPI_IN_PLACE : send.ptr, checked_count(send.numel()), mpi_type(send.dtype), recv.ptr,
                 checked_count(send.numel()), mpi_type(send.dtype), comm_, &req);
  count_ring(int64_t(recv.bytes()) * (size() - 1) / size());
  return std::make_unique<MpiPending>(&req, 1, progress_thread_);
}

std::unique_ptr<PendingTransfer> MpiComm::reduce_scatter_async(const Tensor& send, Tensor recv) {
  LCT_CHECK(send.numel() == recv.numel() * size() && send.dtype == recv.dtype, "reduce_scatter sizes");
  LCT_CHECK(send.dtype != DType::BF16, "MPI cannot reduce bf16");
  if (size() == 1) {
    reduce_scatter(send, recv);
    return std::make_unique<DonePending>();
  }
  MPI_Request req;
  MPI_Ireduce_scatter_block(send.ptr, recv.ptr, checked_count(recv.numel()), mpi_type(recv.dtype), MPI_SUM, comm_,
                            &req);
  count_ring(int64_t(send.bytes()) * (size() - 1) / size());
  return std::make_unique<MpiPending>(&req, 1, progress_thread_);
}

void MpiComm::broadcast(Tensor t, int root) {
  if (size() == 1) return;
  MPI_Bcast(t.ptr, checked_count(int64_t(t.bytes())), MPI_BYTE, root, comm_);
  if (rank_ == root) count_ring(int64_t(t.bytes()));
}

void MpiComm::barrier() { MPI_Barrier(comm_); }

std::unique_ptr<PendingTransfer> MpiComm::exchange(const Tensor& send, int dst, Tensor recv, int src, int tag) {
  LCT_CHECK(send.bytes() == recv.bytes(), "exchange sizes: sending ", send.bytes(), " bytes, receiving ", recv.bytes());
  MPI_Request reqs[2];
  MPI_Irecv(recv.ptr, checked_count(int64_t(recv.bytes())), MPI_BYTE, src, tag, comm_, &reqs[0]);
  MPI_Isend(send.ptr, checked_count(int64_t(send.bytes())), MPI_BYTE, dst, tag, comm_, &reqs[1]);
  count_p2p(dst, int64_t(send.bytes()));
  return std::make_unique<MpiPending>(reqs, 2, progress_thread_);
}

double MpiComm::all_reduce_scalar(double x, ReduceOp op) {
  if (size() == 1) return x;
  double y = 0;
  MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, op == ReduceOp::Sum ? MPI_SUM : MPI_MAX, comm_);
  return y;
}

std::unique_ptr<MpiComm> split_comm(MPI_Comm world, const std::vector<std::vector<int>>& groups, Traffic* traffic,
                                    bool progress_thread) {
  int me = 0;
  MPI_Comm_rank(world, &me);
  int color = -1, key = -1;
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i = 0; i < groups[g].size(); ++i)
      if (groups[g][i] == me) color = int(g), key = int(i);
  LCT_CHECK(color >= 0, "rank ", me, " is in no group");
  MPI_Comm sub;
  MPI_Comm_split(world, color, key, &sub);
  return std::make_unique<MpiComm>(sub, groups[size_t(color)], traffic, progress_thread);
}

}  // namespace lct
