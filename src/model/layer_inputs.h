// The residual stream at each layer boundary, kept from the forward for the backward: x_0 (the
// embedding's output) to x_L (the last layer's output); under train.recompute = layer it is all a
// layer's backward needs. Resident: L + 1 device buffers. Offloaded (train.offload = activations):
// two device slots; each x_l is copied to host memory as soon as it is written (asynchronously:
// the next layer's forward hides the copy) and comes back one layer ahead of the backward that
// reads it, so the device holds at most two layers' inputs whatever the depth.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ops/ops.h"

namespace lct {

class LayerInputs {
 public:
  LayerInputs(Ops& ops, int64_t n_layers, int64_t rows, int64_t cols, bool offload);
  ~LayerInputs();
  LayerInputs(const LayerInputs&) = delete;
  LayerInputs& operator=(const LayerInputs&) = delete;

  // Forward: the buffer x_l is written to (offload: once the slot's previous tenant is on the host),
  // then written(l) when it is complete (offload: its copy to the host starts).
  Tensor write(int64_t l);
  void written(int64_t l);
  // x_l where it was just written (forward), or x_L / x_{L-1} at the start of the backward.
  Tensor get(int64_t l) const;
  // Backward, for l = L-1 down to 0: x_l on the device (waits for its copy back) while x_{l-1}
  // starts coming back.
  Tensor for_backward(int64_t l);
  bool offloaded() const { return offload_; }

 private:
  int slot_of(int64_t l) const { return int(l % 2); }
  void settle(int s);  // waits for the copy in flight on slot s
  Ops& ops_;
  int64_t L_;
  bool offload_;
  std::vector<Tensor> dev_;   // resident: L + 1 buffers; offloaded: 2 slots
  std::vector<void*> host_;   // offloaded: host buffers of x_0 .. x_{L-2}
  int64_t holds_[2] = {-1, -1};  // which x_l a slot holds (offloaded)
  std::unique_ptr<PendingCopy> copy_[2];
};

}  // namespace lct
