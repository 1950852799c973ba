// Backend selection. The cuda backend's sources join this library when the build has nvcc
// (cuda/CMakeLists.txt defines LCT_HAVE_CUDA); without it, asking for cuda is a clear error.
#include "ops/ops.h"

namespace lct {

#ifndef LCT_HAVE_CUDA
bool cuda_available(std::string* why) {
  if (why) *why = "this lctrain was built without CUDA (no nvcc at configure time)";
  return false;
}
std::unique_ptr<Ops> make_cuda_ops(int) {
  throw InputError("run.device = cuda, but this lctrain was built without CUDA (no nvcc at configure time); "
                   "rebuild on a machine with the CUDA toolkit, or set run.device = cpu");
}
#endif

std::unique_ptr<Ops> make_ops(const std::string& device, int device_index, int attn_block) {
  if (device == "cpu") return make_cpu_ops(DType::F32, attn_block);
  if (device == "cuda") {
    std::string why;
    if (!cuda_available(&why)) throw InputError(str("run.device = cuda, but no GPU can be used: ", why));
    return make_cuda_ops(device_index);
  }
  throw InputError(str("unknown device '", device, "' (run.device takes cpu or cuda)"));
}

}  // namespace lct
