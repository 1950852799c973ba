// The parts of the Ops interface every backend shares (category names, the synchronous default of
// the asynchronous copies). In lct_ops_cpu, so the emulated cuda backend links them without lct_ops.
#include "ops/ops.h"

namespace lct {

const char* mem_name(Mem m) {
  switch (m) {
    case Mem::Weights: return "weights";
    case Mem::Gradients: return "gradients";
    case Mem::Optimizer: return "optimizer";
    case Mem::LayerInputs: return "layer_inputs";
    case Mem::Activations: return "activations";
    case Mem::CommBuffers: return "comm_buffers";
    case Mem::Other: return "other";
  }
  return "?";
}

namespace {
class DoneCopy final : public PendingCopy {
 public:
  void wait() override {}
};
}  // namespace

std::unique_ptr<PendingCopy> Ops::to_host_async(void* dst, const Tensor& src) {
  to_host(dst, src);
  return std::make_unique<DoneCopy>();
}

std::unique_ptr<PendingCopy> Ops::from_host_async(Tensor dst, const void* src) {
  from_host(dst, src);
  return std::make_unique<DoneCopy>();
}

}  // namespace lct
