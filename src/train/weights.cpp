#include "train/weights.h"

#include "core/error.h"
#include "ckpt/tensor_ranges.h"
#include "io/safetensors.h"

namespace lct {

void upload_params(Llama& model, Ops& ops, const std::vector<float>& host) {
  (void)ops;
  model.store().upload(host);  // each store keeps what it holds (everything, or a ZeRO-3 shard)
}

void init_random_weights(Llama& model, Ops& ops, const Config& cfg) {
  std::vector<float> host;
  init_params_host(model.table(), cfg.model, cfg.run.seed, host);
  upload_params(model, ops, host);
}

void load_hf_weights(Llama& model, Ops& ops, const std::string& dir) {
  (void)ops;
  // Each rank reads what it holds: its tp slices, and under ZeRO 3 only its shard of them.
  ParamStore& store = model.store();
  store.upload_held(read_hf_ranges(model.table(), dir, store.held_ranges()).data());
}

std::vector<float> read_hf_params(const ParamTable& table, const std::string& dir) {
  return read_hf_ranges(table, dir, {{0, table.total}});
}

std::vector<float> read_hf_ranges(const ParamTable& table, const std::string& dir,
                                  const std::vector<FlatRange>& ranges) {
  SafetensorsReader st = SafetensorsReader::open(dir);
  for (const ParamSpec& p : table.specs) {
    if (!st.has(p.name))
      throw InputError(str(dir, ": tensor '", p.name, "' is missing from the safetensors (model.init_from)"));
    const StTensorInfo& info = st.info(p.name);
    std::vector<int64_t> want = p.is_vector ? std::vector<int64_t>{p.rows} : std::vector<int64_t>{p.rows, p.cols};
    if (info.shape != want)
      throw InputError(str(dir, ": tensor '", p.name, "' has shape ", info.shape.size() ? std::to_string(info.shape[0]) : "",
                           info.shape.size() > 1 ? "x" + std::to_string(info.shape[1]) : "", ", expected ", want[0],
                           want.size() > 1 ? "x" + std::to_string(want[1]) : "", " from config.json"));
  }
  int64_t n = 0;
  for (const FlatRange& r : ranges) n += r.len;
  std::vector<float> host(size_t(n), 0.0f);  // padding (vocabulary rows, unit padding) stays zero
  // A run is contiguous in the row-major full tensor: one ranged read each.
  for (const HostRun& r : runs_of_ranges(table, ranges))
    st.read_f32(table.specs[size_t(r.spec)].name, r.full, r.count, host.data() + r.host);
  return host;
}

}  // namespace lct
