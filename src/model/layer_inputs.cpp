#include "model/layer_inputs.h"

#include "core/error.h"

namespace lct {

LayerInputs::LayerInputs(Ops& ops, int64_t n_layers, int64_t rows, int64_t cols, bool offload)
    : ops_(ops), L_(n_layers), offload_(offload) {
  const DType act = ops_.act_dtype();
  const Tensor shape(nullptr, act, {rows, cols});
  for (int64_t i = 0; i < (offload_ ? 2 : L_ + 1); ++i) {
    Tensor t = shape;
    t.ptr = ops_.alloc(t.bytes(), Mem::LayerInputs);
    dev_.push_back(t);
  }
  if (offload_)  // x_0 .. x_{L-2}: the last two never leave the device
    for (int64_t i = 0; i + 1 < L_; ++i) host_.push_back(ops_.alloc_host(shape.bytes(), Mem::LayerInputs));
}

LayerInputs::~LayerInputs() {
  for (auto& c : copy_) c.reset();  // completes what is in flight
  for (const Tensor& t : dev_) ops_.free(t.ptr);
  for (void* p : host_) ops_.free_host(p);
}

void LayerInputs::settle(int s) {
  if (copy_[s]) {
    copy_[s]->wait();
    copy_[s].reset();
  }
}

Tensor LayerInputs::write(int64_t l) {
  if (!offload_) return dev_[size_t(l)];
  const int s = slot_of(l);
  settle(s);  // x_{l-2} must be on the host before x_l overwrites it
  holds_[s] = l;
  return dev_[size_t(s)];
}

void LayerInputs::written(int64_t l) {
  if (!offload_ || l >= L_ - 1) return;  // x_{L-1} and x_L are still in their slots when backward starts
  const int s = slot_of(l);
  copy_[s] = ops_.to_host_async(host_[size_t(l)], dev_[size_t(s)]);
}

Tensor LayerInputs::get(int64_t l) const {
  if (!offload_) return dev_[size_t(l)];
  LCT_CHECK(holds_[slot_of(l)] == l, "layer input ", l, " is not on the device");
  return dev_[size_t(slot_of(l))];
}

Tensor LayerInputs::for_backward(int64_t l) {
  if (!offload_) return dev_[size_t(l)];
  const int s = slot_of(l);
  settle(s);  // x_l's copy back (started one layer earlier)
  LCT_CHECK(holds_[s] == l, "layer input ", l, " was not brought back before its backward");
  if (l >= 1) {  // x_{l-1} into the other slot, which held x_{l+1} (its backward is done)
    const int o = slot_of(l - 1);
    settle(o);
    if (holds_[o] != l - 1) {
      copy_[o] = ops_.from_host_async(dev_[size_t(o)], host_[size_t(l - 1)]);
      holds_[o] = l - 1;
    }
  }
  return dev_[size_t(s)];
}

}  // namespace lct
