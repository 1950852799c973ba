#include "ops/device_comm.h"

namespace lct {

#ifdef LCT_HAVE_CUDA
std::unique_ptr<Comm> make_nccl_comm(std::unique_ptr<MpiComm> mpi, Ops& ops, const std::string& name,
                                     double timeout_s);  // cuda/nccl_device_comm.cpp
#endif

bool nccl_available() {
#ifdef LCT_HAVE_CUDA
  return true;  // the cuda backend is built only together with NCCL (cmake/LctDependencies.cmake)
#else
  return false;
#endif
}

std::unique_ptr<Comm> make_device_comm(std::unique_ptr<MpiComm> mpi, Ops& ops, const std::string& name,
                                       double timeout_s) {
#ifdef LCT_HAVE_CUDA
  if (ops.name().rfind("cuda", 0) == 0) return make_nccl_comm(std::move(mpi), ops, name, timeout_s);
#endif
  (void)ops;
  (void)name;
  (void)timeout_s;
  return mpi;
}

}  // namespace lct
