#include "model/param_store.h"

#include "core/error.h"
#include "ops/owned_buffers.h"

namespace lct {

void upload_f32(Ops& ops, Tensor dst, const float* host) {
  if (dst.numel() == 0) return;
  if (dst.dtype == DType::F32) {
    ops.from_host(dst, host);
    return;
  }
  OwnedBuffers scratch(ops);
  Tensor tmp = scratch.alloc(DType::F32, {dst.numel()}, Mem::Other);
  ops.from_host(tmp, host);
  ops.convert(dst, tmp);
}

void ParamStore::upload(const std::vector<float>& host) {
  const ParamTable& t = table();
  LCT_CHECK(int64_t(host.size()) == t.total, "host parameters: ", host.size(), " values for a table of ", t.total);
  std::vector<float> held;
  for (const FlatRange& r : held_ranges())
    held.insert(held.end(), host.begin() + r.begin, host.begin() + r.begin + r.len);
  upload_held(held.data());
}

ResidentParams::ResidentParams(Ops& ops, ParamTable table) : ops_(ops), table_(std::move(table)) {
  const int64_t n = table_.total;
  params_ = Tensor(ops_.alloc(size_t(n) * dtype_size(ops_.act_dtype()), Mem::Weights), ops_.act_dtype(), {n});
  grads_ = Tensor(ops_.alloc(size_t(n) * dtype_size(ops_.acc_dtype()), Mem::Gradients), ops_.acc_dtype(), {n});
}

ResidentParams::~ResidentParams() {
  ops_.free(params_.ptr);
  ops_.free(grads_.ptr);
}

void* ResidentParams::at(const Tensor& flat, int u) const {
  return static_cast<char*>(flat.ptr) + size_t(table_.units[size_t(u)].begin) * dtype_size(flat.dtype);
}

void ResidentParams::upload_held(const float* host) { upload_f32(ops_, params_, host); }

}  // namespace lct
