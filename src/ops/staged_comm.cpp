#include "ops/staged_comm.h"

#include <cstring>
#include <vector>

#include "core/error.h"

namespace lct {
namespace {

// Host copy of a device tensor; bf16 is widened to f32 for reductions (MPI has no bf16 sum).
struct HostBuf {
  std::vector<char> bytes;
  Tensor t;
};

HostBuf to_host_buf(Ops& ops, const Tensor& dev, bool widen_bf16) {
  HostBuf h;
  h.bytes.resize(dev.bytes());
  ops.to_host(h.bytes.data(), dev);
  h.t = Tensor(h.bytes.data(), dev.dtype, {dev.numel()});
  if (widen_bf16 && dev.dtype == DType::BF16) {
    std::vector<char> wide(size_t(dev.numel()) * sizeof(float));
    const uint16_t* b = reinterpret_cast<const uint16_t*>(h.bytes.data());
    float* f = reinterpret_cast<float*>(wide.data());
    for (int64_t i = 0; i < dev.numel(); ++i) f[i] = bf16_to_float(b[i]);
    h.bytes.swap(wide);
    h.t = Tensor(h.bytes.data(), DType::F32, {dev.numel()});
  }
  return h;
}

void from_host_buf(Ops& ops, Tensor dev, const HostBuf& h) {
  if (dev.dtype == DType::BF16 && h.t.dtype == DType::F32) {
    std::vector<uint16_t> b(size_t(dev.numel()));
    const float* f = static_cast<const float*>(h.t.ptr);
    for (int64_t i = 0; i < dev.numel(); ++i) b[size_t(i)] = float_to_bf16(f[i]);
    ops.from_host(dev, b.data());
  } else {
    ops.from_host(dev, h.bytes.data());
  }
}

// The received block reaches the device when the transfer completes.
class StagedPending final : public PendingTransfer {
 public:
  StagedPending(Ops& ops, Tensor recv_dev, std::vector<char> send_host, std::vector<char> recv_host)
      : ops_(ops), recv_dev_(recv_dev), send_host_(std::move(send_host)), recv_host_(std::move(recv_host)) {}
  void start(std::unique_ptr<PendingTransfer> mpi) { mpi_ = std::move(mpi); }
  Tensor send_view(const Tensor& like) { return Tensor(send_host_.data(), like.dtype, {like.numel()}); }
  Tensor recv_view() { return Tensor(recv_host_.data(), recv_dev_.dtype, {recv_dev_.numel()}); }
  ~StagedPending() override {
    try {
      wait();
    } catch (...) {
    }
  }
  void wait() override {
    if (done_) return;
    done_ = true;
    mpi_->wait();
    ops_.from_host(recv_dev_, recv_host_.data());
  }
  double transfer_seconds() const override { return mpi_ ? mpi_->transfer_seconds() : -1; }

 private:
  Ops& ops_;
  Tensor recv_dev_;
  std::vector<char> send_host_, recv_host_;
  std::unique_ptr<PendingTransfer> mpi_;
  bool done_ = false;
};

// A collective in flight on host copies: when MPI is done, the result goes to the device (bf16
// results are rounded from the f32 the host reduced in).
class StagedCollective final : public PendingTransfer {
 public:
  StagedCollective(Ops& ops, Tensor recv_dev, HostBuf send, HostBuf recv)
      : ops_(ops), recv_dev_(recv_dev), send_(std::move(send)), recv_(std::move(recv)) {}
  ~StagedCollective() override {
    try {
      wait();
    } catch (...) {
    }
  }
  void start(std::unique_ptr<PendingTransfer> mpi) { mpi_ = std::move(mpi); }
  HostBuf& send() { return send_; }
  HostBuf& recv() { return recv_; }
  void wait() override {
    if (done_) return;
    done_ = true;
    mpi_->wait();
    from_host_buf(ops_, recv_dev_, recv_);
  }
  double transfer_seconds() const override { return mpi_ ? mpi_->transfer_seconds() : -1; }

 private:
  Ops& ops_;
  Tensor recv_dev_;
  HostBuf send_, recv_;
  std::unique_ptr<PendingTransfer> mpi_;
  bool done_ = false;
};

// A host buffer of n elements of type t (its Tensor points into its own bytes).
HostBuf host_buf(DType t, int64_t n) {
  HostBuf h;
  h.bytes.resize(size_t(n) * dtype_size(t));
  h.t = Tensor(h.bytes.data(), t, {n});
  return h;
}

class StagedComm final : public Comm {
 public:
  StagedComm(std::unique_ptr<MpiComm> mpi, Ops& ops) : mpi_(std::move(mpi)), ops_(ops) {}

  int rank() const override { return mpi_->rank(); }
  int size() const override { return mpi_->size(); }
  int world_rank_of(int r) const override { return mpi_->world_rank_of(r); }

  void all_reduce(Tensor t, ReduceOp op) override {
    if (size() == 1) return;
    HostBuf h = to_host_buf(ops_, t, true);
    mpi_->all_reduce(h.t, op);
    fix_count(t, h.t, 2);
    from_host_buf(ops_, t, h);
  }
  void reduce_scatter(const Tensor& send, Tensor recv) override {
    HostBuf s = to_host_buf(ops_, send, true);
    HostBuf r;
    r.bytes.resize(size_t(recv.numel()) * dtype_size(s.t.dtype));
    r.t = Tensor(r.bytes.data(), s.t.dtype, {recv.numel()});
    mpi_->reduce_scatter(s.t, r.t);
    fix_count(send, s.t, 1);
    from_host_buf(ops_, recv, r);
  }
  void all_gather(const Tensor& send, Tensor recv) override {
    HostBuf s = to_host_buf(ops_, send, false);
    std::vector<char> r(recv.bytes());
    mpi_->all_gather(s.t, Tensor(r.data(), recv.dtype, {recv.numel()}));
    ops_.from_host(recv, r.data());
  }
  std::unique_ptr<PendingTransfer> all_gather_async(const Tensor& send, Tensor recv) override {
    LCT_CHECK(recv.numel() == send.numel() * size() && send.dtype == recv.dtype, "all_gather sizes");
    auto p = std::make_unique<StagedCollective>(ops_, recv, to_host_buf(ops_, send, false), host_buf(recv.dtype, recv.numel()));
    p->start(mpi_->all_gather_async(p->send().t, p->recv().t));
    return p;
  }
  std::unique_ptr<PendingTransfer> reduce_scatter_async(const Tensor& send, Tensor recv) override {
    LCT_CHECK(send.numel() == recv.numel() * size() && send.dtype == recv.dtype, "reduce_scatter sizes");
    HostBuf s = to_host_buf(ops_, send, true);
    const DType wide = s.t.dtype;
    auto p = std::make_unique<StagedCollective>(ops_, recv, std::move(s), host_buf(wide, recv.numel()));
    p->start(mpi_->reduce_scatter_async(p->send().t, p->recv().t));
    fix_count(send, p->send().t, 1);
    return p;
  }
  void broadcast(Tensor t, int root) override {
    if (size() == 1) return;
    HostBuf h = to_host_buf(ops_, t, false);
    mpi_->broadcast(h.t, root);
    ops_.from_host(t, h.bytes.data());
  }
  void barrier() override { mpi_->barrier(); }
  void all_to_all(const Tensor& send, Tensor recv) override {
    LCT_CHECK(send.numel() == recv.numel() && send.dtype == recv.dtype && send.numel() % size() == 0,
              "all_to_all sizes: sending ", send.numel(), " elements, receiving ", recv.numel(), " over ", size(),
              " ranks");
    HostBuf s = to_host_buf(ops_, send, false);  // no reduction: the device dtype travels as it is
    HostBuf r = host_buf(recv.dtype, recv.numel());
    mpi_->all_to_all(s.t, r.t);  // counts the same bytes as the device tensor holds
    ops_.from_host(recv, r.bytes.data());
  }
  std::unique_ptr<PendingTransfer> exchange(const Tensor& send, int dst, Tensor recv, int src, int tag) override {
    LCT_CHECK(send.bytes() == recv.bytes() && send.dtype == recv.dtype, "ring exchange sizes");
    std::vector<char> sh(send.bytes()), rh(recv.bytes());
    ops_.to_host(sh.data(), send);  // waits for the compute that produced the block
    auto p = std::make_unique<StagedPending>(ops_, recv, std::move(sh), std::move(rh));
    p->start(mpi_->exchange(p->send_view(send), dst, p->recv_view(), src, tag));
    return p;
  }
  double all_reduce_scalar(double x, ReduceOp op) override { return mpi_->all_reduce_scalar(x, op); }

 private:
  // The MPI layer counted the widened f32 bytes; count the device dtype's bytes, as NCCL sends them.
  void fix_count(const Tensor& dev, const Tensor& host, int factor) {
    const int64_t n = size(), counted = factor * int64_t(host.bytes()) * (n - 1) / n,
                  want = factor * int64_t(dev.bytes()) * (n - 1) / n;
    if (counted != want) mpi_->count_collective(want - counted);
  }

  std::unique_ptr<MpiComm> mpi_;
  Ops& ops_;
};

}  // namespace

std::unique_ptr<Comm> make_staged_comm(std::unique_ptr<MpiComm> mpi, Ops& ops) {
  return std::make_unique<StagedComm>(std::move(mpi), ops);
}

}  // namespace lct
