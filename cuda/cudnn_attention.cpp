#include "cuda/cudnn_attention.h"

#include "core/error.h"

namespace lct::cuda {

struct CudnnAttention::Impl {};

bool CudnnAttention::available(std::string* why) {
  if (why) *why = "not implemented yet";
  return false;
}
CudnnAttention::CudnnAttention(cudaStream_t) { throw InputError("attention_impl = cudnn: not implemented yet"); }
CudnnAttention::~CudnnAttention() = default;
void CudnnAttention::forward(Tensor, Tensor, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {}
void CudnnAttention::backward(Tensor, Tensor, Tensor, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const Tensor&, const Tensor&, const Tensor&) {}
int64_t CudnnAttention::workspace_bytes() const { return 0; }

}  // namespace lct::cuda
