// The communication interface (parallel/comm.h) on NCCL for device buffers: collectives and the
// ring's paired send/recv go through NCCL on a dedicated stream ordered after the compute stream;
// host scalars and the group's bookkeeping stay on the MPI communicator it wraps. Bytes are
// counted exactly as MpiComm counts them, so --plan and the metrics agree on both backends.
#include <cuda_runtime_api.h>

#include "core/error.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_ops.h"
#include "cuda/nccl_comm.h"
#include "ops/device_comm.h"

namespace lct {
namespace {

// Everything enqueued on the communication stream up to now; wait() blocks until it completed
// (polling NCCL for errors), so the result is there for the compute stream's next op.
class NcclPending final : public PendingTransfer {
 public:
  NcclPending(cuda::NcclComm& c, cudaStream_t s, const char* what) : c_(c), s_(s), what_(what) {}
  ~NcclPending() override {
    try {
      wait();
    } catch (...) {
    }
  }
  void wait() override {
    if (!done_) c_.wait(s_, what_);
    done_ = true;
  }

 private:
  cuda::NcclComm& c_;
  cudaStream_t s_;
  const char* what_;
  bool done_ = false;
};

class NcclDeviceComm final : public Comm {
 public:
  NcclDeviceComm(std::unique_ptr<MpiComm> mpi, Ops& ops, const std::string& name, double timeout_s)
      : mpi_(std::move(mpi)), compute_(cuda_stream_of(ops)) {
    int device = 0;
    cudaGetDevice(&device);
    cuda::NcclOptions opt;
    opt.name = name;
    opt.timeout_s = timeout_s > 0 ? timeout_s : 600;
    nccl_ = std::make_unique<cuda::NcclComm>(mpi_->raw(), device, opt);
    cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
  }
  ~NcclDeviceComm() override { cudaStreamDestroy(stream_); }

  int rank() const override { return mpi_->rank(); }
  int size() const override { return mpi_->size(); }
  int world_rank_of(int r) const override { return mpi_->world_rank_of(r); }

  void all_reduce(Tensor t, ReduceOp op) override {
    if (size() == 1) return;
    cuda::stream_wait(stream_, compute_);
    nccl_->all_reduce(t.ptr, t.numel(), t.dtype, op == ReduceOp::Sum ? cuda::NcclReduce::Sum : cuda::NcclReduce::Max,
                      stream_);
    nccl_->wait(stream_, "all_reduce");
    mpi_->count_collective(2 * int64_t(t.bytes()) * (size() - 1) / size());
  }
  void reduce_scatter(const Tensor& send, Tensor recv) override {
    LCT_CHECK(send.numel() == recv.numel() * size() && send.dtype == recv.dtype, "reduce_scatter sizes");
    cuda::stream_wait(stream_, compute_);
    nccl_->reduce_scatter(send.ptr, recv.ptr, recv.numel(), recv.dtype, cuda::NcclReduce::Sum, stream_);
    nccl_->wait(stream_, "reduce_scatter");
    mpi_->count_collective(int64_t(send.bytes()) * (size() - 1) / size());
  }
  void all_gather(const Tensor& send, Tensor recv) override {
    LCT_CHECK(recv.numel() == send.numel() * size() && send.dtype == recv.dtype, "all_gather sizes");
    cuda::stream_wait(stream_, compute_);
    nccl_->all_gather(send.ptr, recv.ptr, send.numel(), send.dtype, stream_);
    nccl_->wait(stream_, "all_gather");
    mpi_->count_collective(int64_t(recv.bytes()) * (size() - 1) / size());
  }
  std::unique_ptr<PendingTransfer> all_gather_async(const Tensor& send, Tensor recv) override {
    LCT_CHECK(recv.numel() == send.numel() * size() && send.dtype == recv.dtype, "all_gather sizes");
    cuda::stream_wait(stream_, compute_);  // the shard to send was written on the compute stream
    nccl_->all_gather(send.ptr, recv.ptr, send.numel(), send.dtype, stream_);
    mpi_->count_collective(int64_t(recv.bytes()) * (size() - 1) / size());
    return std::make_unique<NcclPending>(*nccl_, stream_, "all_gather (async)");
  }
  std::unique_ptr<PendingTransfer> reduce_scatter_async(const Tensor& send, Tensor recv) override {
    LCT_CHECK(send.numel() == recv.numel() * size() && send.dtype == recv.dtype, "reduce_scatter sizes");
    cuda::stream_wait(stream_, compute_);  // the gradients were accumulated on the compute stream
    nccl_->reduce_scatter(send.ptr, recv.ptr, recv.numel(), recv.dtype, cuda::NcclReduce::Sum, stream_);
    mpi_->count_collective(int64_t(send.bytes()) * (size() - 1) / size());
    return std::make_unique<NcclPending>(*nccl_, stream_, "reduce_scatter (async)");
  }
  void broadcast(Tensor t, int root) override {
    cuda::stream_wait(stream_, compute_);
    nccl_->broadcast(t.ptr, t.numel(), t.dtype, root, stream_);
    nccl_->wait(stream_, "broadcast");
    if (rank() == root) mpi_->count_collective(int64_t(t.bytes()));
  }
  void barrier() override { mpi_->barrier(); }
  void all_to_all(const Tensor& send, Tensor recv) override {
    LCT_CHECK(send.numel() == recv.numel() && send.dtype == recv.dtype && send.numel() % size() == 0,
              "all_to_all sizes: sending ", send.numel(), " elements, receiving ", recv.numel(), " over ", size(),
              " ranks");
    cuda::stream_wait(stream_, compute_);  // the parts were packed on the compute stream
    nccl_->all_to_all(send.ptr, recv.ptr, send.numel() / size(), send.dtype, stream_);
    nccl_->wait(stream_, "all_to_all");
    mpi_->count_a2a(int64_t(send.bytes()) / size());
  }
  std::unique_ptr<PendingTransfer> exchange(const Tensor& send, int dst, Tensor recv, int src, int) override {
    LCT_CHECK(send.bytes() == recv.bytes() && send.dtype == recv.dtype, "ring exchange sizes");
    cuda::stream_wait(stream_, compute_);  // the block to send was produced on the compute stream
    nccl_->exchange(send.ptr, dst, recv.ptr, src, send.numel(), send.dtype, stream_);
    mpi_->count_p2p(dst, int64_t(send.bytes()));
    return std::make_unique<NcclPending>(*nccl_, stream_, "ring exchange");
  }
  double all_reduce_scalar(double x, ReduceOp op) override { return mpi_->all_reduce_scalar(x, op); }

 private:
  std::unique_ptr<MpiComm> mpi_;
  std::unique_ptr<cuda::NcclComm> nccl_;
  cudaStream_t compute_, stream_ = nullptr;
};

}  // namespace

std::unique_ptr<Comm> make_nccl_comm(std::unique_ptr<MpiComm> mpi, Ops& ops, const std::string& name,
                                     double timeout_s) {
  return std::make_unique<NcclDeviceComm>(std::move(mpi), ops, name, timeout_s);
}

}  // namespace lct
