// Communicators on the backend's buffers. The cpu backend's memory is host memory, so the MPI
// communicator serves as it is; the cuda backend wraps it into an NCCL communicator for device
// buffers (host scalars still go through MPI). Collective over the communicator's ranks.
#pragma once

#include <memory>
#include <string>

#include "ops/ops.h"
#include "parallel/mpi_comm.h"

namespace lct {

// Whether this build has NCCL (the cuda backend's default device communicator).
bool nccl_available();

// `name` ("tp", "cp", "dp", "dpcp") appears in NCCL error messages.
std::unique_ptr<Comm> make_device_comm(std::unique_ptr<MpiComm> mpi, Ops& ops, const std::string& name,
                                       double timeout_s);

}  // namespace lct
