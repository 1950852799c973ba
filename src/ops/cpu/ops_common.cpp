// The parts of the Ops interface every backend shares (category names, the synchronous default of
// the asynchronous copies). In lct_ops_cpu, so the emulated cuda backend links them without lct_ops.
#include "ops/ops.h"

#include "core/error.h"

namespace lct {

int64_t CopyMap::max_offset() const {
  if (numel() == 0) return -1;
  int64_t off = 0;
  for (int k = 0; k < 5; ++k) off += (dims[k] - 1) * strides[k];
  return off;
}

CopyMap CopyMap::of(std::initializer_list<std::pair<int64_t, int64_t>> dims_strides) {
  LCT_CHECK(dims_strides.size() >= 1 && dims_strides.size() <= 5, "a copy map has 1 to 5 dims, not ",
            dims_strides.size());
  CopyMap m;
  int k = 5 - int(dims_strides.size());
  for (const auto& ds : dims_strides) {
    m.dims[k] = ds.first;
    m.strides[k] = ds.second;
    ++k;
  }
  return m;
}

void check_permute_copy(const Tensor& dst, const Tensor& src, const CopyMap& m) {
  auto map_text = [&] {
    std::string s = "[";
    for (int k = 0; k < 5; ++k) s += str(k ? ", " : "", m.dims[k], ":", m.strides[k]);
    return s + "]";
  };
  LCT_CHECK(dst.dtype == src.dtype, "permute_copy dtypes ", dtype_name(dst.dtype), " vs ", dtype_name(src.dtype));
  for (int k = 0; k < 5; ++k)
    LCT_CHECK(m.dims[k] >= 0 && m.strides[k] >= 0, "permute_copy map ", map_text(), ": negative size or stride");
  LCT_CHECK(dst.numel() == m.numel(), "permute_copy: dst", dst.shape_str(), " for a map of ", m.numel(),
            " elements ", map_text());
  LCT_CHECK(m.max_offset() < src.numel(), "permute_copy: map ", map_text(), " reads offset ", m.max_offset(),
            " of src", src.shape_str());
  const char* d0 = static_cast<const char*>(dst.ptr);
  const char* s0 = static_cast<const char*>(src.ptr);
  LCT_CHECK(m.numel() == 0 || d0 + dst.bytes() <= s0 || s0 + src.bytes() <= d0, "permute_copy: dst and src overlap");
}

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
