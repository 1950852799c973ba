#include "train/weights.h"

#include "core/error.h"
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
  upload_params(model, ops, read_hf_params(model.table(), dir));
}

std::vector<float> read_hf_params(const ParamTable& table, const std::string& dir) {
  SafetensorsReader st = SafetensorsReader::open(dir);
  std::vector<float> host(static_cast<size_t>(table.total));
  for (const ParamSpec& p : table.specs) {
    if (!st.has(p.name))
      throw InputError(str(dir, ": tensor '", p.name, "' is missing from the safetensors (model.init_from)"));
    const StTensorInfo& info = st.info(p.name);
    std::vector<int64_t> want = p.is_vector ? std::vector<int64_t>{p.rows} : std::vector<int64_t>{p.rows, p.cols};
    if (info.shape != want)
      throw InputError(str(dir, ": tensor '", p.name, "' has shape ", info.shape.size() ? std::to_string(info.shape[0]) : "",
                           info.shape.size() > 1 ? "x" + std::to_string(info.shape[1]) : "", ", expected ", want[0],
                           want.size() > 1 ? "x" + std::to_string(want[1]) : "", " from config.json"));
    float* dst = host.data() + p.offset;
    if (p.split == Split::Cols) {  // each row of the slice is a piece of a full row
      for (int64_t r = 0; r < p.local_rows; ++r)
        st.read_f32(p.name, (p.row0 + r) * p.cols + p.col0, p.local_cols, dst + r * p.local_cols);
    } else {  // contiguous rows
      st.read_f32(p.name, p.row0 * p.cols, p.valid_rows * p.local_cols, dst);  // padding rows stay zero
    }
  }
  return host;
}

}  // namespace lct
