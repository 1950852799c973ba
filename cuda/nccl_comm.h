// NCCL communicators for the cuda backend, built from MPI sub-communicators (tp, cp, dp, dp x cp).
// A small C++ API on device buffers for the communication layer (src/parallel) to wrap; nothing
// here depends on it.
//
// Hangs and failures: every communicator is non-blocking (ncclConfig_t.blocking = 0), so no NCCL
// call can block forever. Initialisation and every wait() poll ncclCommGetAsyncError; an
// asynchronous error (a peer died, a network failure) or a collective that exceeds
// NcclOptions::timeout_s aborts the communicator (ncclCommAbort) and throws lct::Error naming the
// group, the operation and the cause, so the job ends with a clear message instead of hanging.
//
// Streams: operations are enqueued on the stream passed in, typically a dedicated communication
// stream so the ring's send/recv overlaps attention on the compute stream (cuda_stream_of(ops)).
// Order the two with events: record an event on the compute stream after the producer and make
// the comm stream wait on it (stream_wait(comm, compute)), and the other way round before the
// consumer.
#pragma once

#include <cuda_runtime_api.h>
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"

namespace lct::cuda {

enum class NcclReduce { Sum, Max };

struct NcclOptions {
  double timeout_s = 600;     // init or any waited-for operation longer than this aborts the job
  std::string name = "nccl";  // the group's name in messages: "tp", "cp", "dp", "dpcp"
};

class NcclComm {
 public:
  // Collective over `comm` (every rank of it calls): rank 0 creates the NCCL unique id, MPI
  // broadcasts it, each rank joins on `device` (a visible device index).
  NcclComm(MPI_Comm comm, int device, const NcclOptions& opt = {});
  ~NcclComm();  // finalizes and destroys; aborts instead if an error occurred or it times out
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const;
  int size() const;
  const std::string& name() const;

  // All enqueued on `stream`; buffers are device memory; counts are elements of dtype t
  // (f32, f64, bf16, i32).
  void all_reduce(void* buf, int64_t count, DType t, NcclReduce op, cudaStream_t stream);
  // send holds size() * recv_count elements; this rank receives the reduction of part rank().
  void reduce_scatter(const void* send, void* recv, int64_t recv_count, DType t, NcclReduce op, cudaStream_t stream);
  // recv holds size() * send_count elements; part i comes from rank i.
  void all_gather(const void* send, void* recv, int64_t send_count, DType t, cudaStream_t stream);
  void broadcast(void* buf, int64_t count, DType t, int root, cudaStream_t stream);
  void send(const void* buf, int64_t count, DType t, int peer, cudaStream_t stream);
  void recv(void* buf, int64_t count, DType t, int peer, cudaStream_t stream);
  // One ring step: send `count` elements to dst and receive as many from src, as one NCCL group.
  void exchange(const void* send, int dst, void* recv, int src, int64_t count, DType t, cudaStream_t stream);

  // send and recv hold size() parts of `count` elements: part j of send goes to rank j, part i of
  // recv comes from rank i (one NCCL group of send/recv pairs, the self part included).
  void all_to_all(const void* send, void* recv, int64_t count, DType t, cudaStream_t stream);

  // Blocks until everything enqueued on `stream` so far has completed, polling NCCL for
  // asynchronous errors; aborts and throws on error or after timeout_s. `what` names the
  // operation in the message.
  void wait(cudaStream_t stream, const char* what);
  // Throws (after aborting the communicator) if NCCL has reported an asynchronous error.
  void check_async(const char* what);
  // Aborts the communicator (idempotent). Pending operations are cancelled.
  void abort();
  bool aborted() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `waiter` waits (on the device) for the work enqueued on `producer` so far.
void stream_wait(cudaStream_t waiter, cudaStream_t producer);

}  // namespace lct::cuda
