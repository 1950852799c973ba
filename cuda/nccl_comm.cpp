#include "cuda/nccl_comm.h"

#include <nccl.h>

#include <chrono>
#include <thread>

#include "core/log.h"
#include "cuda/cuda_check.h"

namespace lct::cuda {
namespace {

using Clock = std::chrono::steady_clock;

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::BF16: return ncclBfloat16;
    case DType::I32: return ncclInt32;
  }
  return ncclFloat32;
}
ncclRedOp_t nccl_op(NcclReduce op) { return op == NcclReduce::Sum ? ncclSum : ncclMax; }

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

struct NcclComm::Impl {
  ncclComm_t comm = nullptr;
  int rank = 0, size = 1, device = 0;
  NcclOptions opt;
  bool aborted = false;

  std::string where(const char* what) const {
    return str("NCCL ", what, " on communicator '", opt.name, "' (rank ", rank, " of ", size, ", device ", device,
               ")");
  }
  std::string nccl_text(ncclResult_t r) const {
    std::string s = ncclGetErrorString(r);
    const char* last = comm ? ncclGetLastError(comm) : nullptr;
    if (last && *last) s += str(" (", last, ")");
    return s;
  }
  [[noreturn]] void fail(const char* what, const std::string& cause) {
    do_abort();
    throw Error(kExitFailure, str(where(what), " failed: ", cause,
                                  ". The communicator was aborted; check the other ranks' logs for the first error"));
  }
  void do_abort() {
    if (comm && !aborted) {
      aborted = true;
      ncclCommAbort(comm);
    }
  }
  // A non-blocking communicator may answer ncclInProgress: poll its state until it settles.
  void settle(ncclResult_t r, const char* what) {
    const Clock::time_point t0 = Clock::now();
    while (r == ncclInProgress) {
      if (seconds_since(t0) > opt.timeout_s)
        fail(what, str("still in progress after ", opt.timeout_s, " s (a peer rank is stuck or gone)"));
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      ncclResult_t state = ncclSuccess;
      const ncclResult_t q = ncclCommGetAsyncError(comm, &state);
      r = q != ncclSuccess ? q : state;
    }
    if (r != ncclSuccess) fail(what, nccl_text(r));
  }
  void call(ncclResult_t r, const char* what) {
    if (aborted) throw Error(kExitFailure, str(where(what), ": the communicator was aborted earlier"));
    settle(r, what);
  }
};

NcclComm::NcclComm(MPI_Comm comm, int device, const NcclOptions& opt) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.opt = opt;
  m.device = device;
  MPI_Comm_rank(comm, &m.rank);
  MPI_Comm_size(comm, &m.size);
  LCT_CUDA_CHECK(cudaSetDevice(device));
  ncclUniqueId id{};
  if (m.rank == 0) {
    const ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) throw Error(kExitFailure, str(m.where("ncclGetUniqueId"), " failed: ", ncclGetErrorString(r)));
  }
  MPI_Bcast(&id, int(sizeof(id)), MPI_BYTE, 0, comm);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  const ncclResult_t r = ncclCommInitRankConfig(&m.comm, m.size, id, m.rank, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    m.comm = nullptr;
    throw Error(kExitFailure, str(m.where("ncclCommInitRankConfig"), " failed: ", ncclGetErrorString(r)));
  }
  m.settle(r, "ncclCommInitRankConfig");
}

NcclComm::~NcclComm() {
  Impl& m = *impl_;
  if (!m.comm) return;
  if (!m.aborted) {
    try {
      m.settle(ncclCommFinalize(m.comm), "ncclCommFinalize");
      m.settle(ncclCommDestroy(m.comm), "ncclCommDestroy");
      return;
    } catch (const std::exception& e) {
      warn(e.what());  // fail() has aborted the communicator
      return;
    }
  }
}

int NcclComm::rank() const { return impl_->rank; }
int NcclComm::size() const { return impl_->size; }
const std::string& NcclComm::name() const { return impl_->opt.name; }
bool NcclComm::aborted() const { return impl_->aborted; }
void NcclComm::abort() { impl_->do_abort(); }

void NcclComm::all_reduce(void* buf, int64_t count, DType t, NcclReduce op, cudaStream_t stream) {
  impl_->call(ncclAllReduce(buf, buf, size_t(count), nccl_type(t), nccl_op(op), impl_->comm, stream), "all_reduce");
}
void NcclComm::reduce_scatter(const void* send, void* recv, int64_t recv_count, DType t, NcclReduce op,
                              cudaStream_t stream) {
  impl_->call(ncclReduceScatter(send, recv, size_t(recv_count), nccl_type(t), nccl_op(op), impl_->comm, stream),
              "reduce_scatter");
}
void NcclComm::all_gather(const void* send, void* recv, int64_t send_count, DType t, cudaStream_t stream) {
  impl_->call(ncclAllGather(send, recv, size_t(send_count), nccl_type(t), impl_->comm, stream), "all_gather");
}
void NcclComm::broadcast(void* buf, int64_t count, DType t, int root, cudaStream_t stream) {
  impl_->call(ncclBroadcast(buf, buf, size_t(count), nccl_type(t), root, impl_->comm, stream), "broadcast");
}
void NcclComm::send(const void* buf, int64_t count, DType t, int peer, cudaStream_t stream) {
  impl_->call(ncclSend(buf, size_t(count), nccl_type(t), peer, impl_->comm, stream), "send");
}
void NcclComm::recv(void* buf, int64_t count, DType t, int peer, cudaStream_t stream) {
  impl_->call(ncclRecv(buf, size_t(count), nccl_type(t), peer, impl_->comm, stream), "recv");
}
void NcclComm::exchange(const void* send, int dst, void* recv, int src, int64_t count, DType t, cudaStream_t stream) {
  Impl& m = *impl_;
  m.call(ncclGroupStart(), "exchange (group start)");
  const ncclResult_t rs = ncclSend(send, size_t(count), nccl_type(t), dst, m.comm, stream);
  const ncclResult_t rr = ncclRecv(recv, size_t(count), nccl_type(t), src, m.comm, stream);
  const ncclResult_t re = ncclGroupEnd();
  // Inside a group, send/recv only record the operation; errors surface at group end.
  if (rs != ncclSuccess && rs != ncclInProgress) m.fail("exchange (send)", m.nccl_text(rs));
  if (rr != ncclSuccess && rr != ncclInProgress) m.fail("exchange (recv)", m.nccl_text(rr));
  m.call(re, "exchange");
}

void NcclComm::all_to_all(const void* send, void* recv, int64_t count, DType t, cudaStream_t stream) {
  Impl& m = *impl_;
  const size_t part = size_t(count) * dtype_size(t);
  m.call(ncclGroupStart(), "all_to_all (group start)");
  ncclResult_t first = ncclSuccess;
  for (int j = 0; j < m.size; ++j) {
    const ncclResult_t rs =
        ncclSend(static_cast<const char*>(send) + j * part, size_t(count), nccl_type(t), j, m.comm, stream);
    const ncclResult_t rr = ncclRecv(static_cast<char*>(recv) + j * part, size_t(count), nccl_type(t), j, m.comm, stream);
    if (first == ncclSuccess && rs != ncclSuccess && rs != ncclInProgress) first = rs;
    if (first == ncclSuccess && rr != ncclSuccess && rr != ncclInProgress) first = rr;
  }
  const ncclResult_t re = ncclGroupEnd();
  // Inside a group, send/recv only record the operations; errors surface at group end.
  if (first != ncclSuccess) m.fail("all_to_all (send/recv)", m.nccl_text(first));
  m.call(re, "all_to_all");
}

void NcclComm::wait(cudaStream_t stream, const char* what) {
  Impl& m = *impl_;
  if (m.aborted) throw Error(kExitFailure, str(m.where(what), ": the communicator was aborted earlier"));
  cudaEvent_t ev = nullptr;
  LCT_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  LCT_CUDA_CHECK(cudaEventRecord(ev, stream));
  const Clock::time_point t0 = Clock::now();
  for (;;) {
    const cudaError_t e = cudaEventQuery(ev);
    if (e == cudaSuccess) break;
    if (e != cudaErrorNotReady) {
      cudaEventDestroy(ev);
      m.fail(what, str("CUDA error while waiting: ", cuda_error_text(e)));
    }
    ncclResult_t state = ncclSuccess;
    const ncclResult_t q = ncclCommGetAsyncError(m.comm, &state);
    const ncclResult_t r = q != ncclSuccess ? q : state;
    if (r != ncclSuccess && r != ncclInProgress) {
      cudaEventDestroy(ev);
      m.fail(what, m.nccl_text(r));
    }
    if (seconds_since(t0) > m.opt.timeout_s) {
      cudaEventDestroy(ev);
      m.fail(what, str("did not complete within the hang timeout of ", m.opt.timeout_s,
                       " s (a peer rank is stuck, dead, or not calling the same collective)"));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  cudaEventDestroy(ev);
}

void NcclComm::check_async(const char* what) {
  Impl& m = *impl_;
  if (m.aborted) throw Error(kExitFailure, str(m.where(what), ": the communicator was aborted earlier"));
  ncclResult_t state = ncclSuccess;
  const ncclResult_t q = ncclCommGetAsyncError(m.comm, &state);
  const ncclResult_t r = q != ncclSuccess ? q : state;
  if (r != ncclSuccess && r != ncclInProgress) m.fail(what, m.nccl_text(r));
}

void stream_wait(cudaStream_t waiter, cudaStream_t producer) {
  cudaEvent_t ev = nullptr;
  LCT_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  LCT_CUDA_CHECK(cudaEventRecord(ev, producer));
  LCT_CUDA_CHECK(cudaStreamWaitEvent(waiter, ev, 0));
  LCT_CUDA_CHECK(cudaEventDestroy(ev));  // released once the wait has been satisfied
}

}  // namespace lct::cuda
