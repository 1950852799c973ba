// Backend selection. The cuda backend's sources join this library when the build has nvcc
// (cuda/CMakeLists.txt defines LCT_HAVE_CUDA); without it, asking for cuda is a clear error.
#include "ops/ops.h"

#ifdef LCT_HAVE_CUDA
#include "cuda/cuda_ops.h"
#endif

namespace lct {

#ifndef LCT_HAVE_CUDA
bool cuda_available(std::string* why) {
  if (why) *why = "this lctrain was built without CUDA (no nvcc at configure time)";
  return false;
}
int cuda_device_count() { return 0; }
std::unique_ptr<Ops> make_cuda_ops(int) {
  throw InputError("run.device = cuda, but this lctrain was built without CUDA (no nvcc at configure time); "
                   "rebuild on a machine with the CUDA toolkit, or set run.device = cpu");
}
#endif

std::unique_ptr<Ops> make_ops(const std::string& device, int device_index, int attn_block,
                              const std::string& attention_impl) {
  if (device == "cpu") {
    if (attention_impl != "own")
      throw InputError(str("model.attention_impl = ", attention_impl, " needs run.device = cuda"));
    return make_cpu_ops(DType::F32, attn_block);
  }
  if (device == "cuda") {
    std::string why;
    if (!cuda_available(&why)) throw InputError(str("run.device = cuda, but no GPU can be used: ", why));
#ifdef LCT_HAVE_CUDA
    return make_cuda_ops(device_index, parse_attention_impl(attention_impl));
#else
    return make_cuda_ops(device_index);
#endif
  }
  throw InputError(str("unknown device '", device, "' (run.device takes cpu or cuda)"));
}

}  // namespace lct
