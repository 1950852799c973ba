// A communicator for device buffers that stages every transfer through host memory and MPI
// (parallel.device_comm = mpi). It serves where NCCL cannot: several ranks on ONE GPU (NCCL
// refuses two ranks on the same device), clusters without NCCL, and the emulated cuda backend.
// Any backend works (it only uses Ops::to_host/from_host), so the cpu backend tests it too.
// Slower than NCCL (two PCIe copies per transfer, no overlap of the copies with compute).
#pragma once

#include <memory>

#include "ops/ops.h"
#include "parallel/mpi_comm.h"

namespace lct {

// Wraps `mpi` (which counts the bytes, as for NCCL). bf16 tensors are reduced in f32 on the host
// and rounded once.
std::unique_ptr<Comm> make_staged_comm(std::unique_ptr<MpiComm> mpi, Ops& ops);

}  // namespace lct
