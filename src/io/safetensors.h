// Hugging Face safetensors: reading one file or a sharded set (model.safetensors.index.json), and
// writing float data as F32 or BF16 in the layout transformers' save_pretrained produces.
//
// File layout: u64 little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the raw
// little-endian data; offsets are relative to the start of the data section (byte 8 + N).
// Every header is validated at open(); any bad input is an lct::InputError naming the file, the tensor
// and the byte offset. Reads use pread on the requested range only, never the whole file.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lct {

// Every dtype safetensors defines. read_f32 converts F32, F16, BF16 and F64; the others can be listed
// (info(), tensors()) but not read as float.
enum class StDType { BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F8_E4M3, F8_E5M2, F16, BF16, F32, F64 };

const char* st_dtype_name(StDType t);  // "BF16" ...
size_t st_dtype_size(StDType t);       // bytes per element
// Parses a safetensors dtype name; false when unknown.
bool st_dtype_parse(const std::string& name, StDType* out);

struct StTensorInfo {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range in the data section of `file`
  std::string file;             // full path of the file holding the tensor
  int64_t numel() const;        // product of shape (1 for a scalar)
};

class SafetensorsReader {
 public:
  // path: a .safetensors file, a model.safetensors.index.json, or a directory holding one of them
  // (model.safetensors is preferred over the index, as transformers does; a directory with neither
  // but exactly one *.safetensors file opens that file).
  static SafetensorsReader open(const std::string& path);

  // Tensors in file order (shards by name, then by data offset).
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }
  bool has(const std::string& name) const;
  // InputError naming the tensor and the path when absent.
  const StTensorInfo& info(const std::string& name) const;

  // Reads elements [offset, offset + count) of the flattened (row-major) tensor, converted to float.
  // Reads only those bytes, so a tensor-parallel rank can read just its rows. Thread-safe.
  void read_f32(const std::string& name, int64_t offset, int64_t count, float* out) const;

  // The "__metadata__" of the file; for a sharded set, that of the first shard overlaid with the
  // index's "metadata" (numbers written as JSON text, e.g. total_size).
  std::map<std::string, std::string> metadata() const { return metadata_; }

  // What open() was given and what it resolved to (a .safetensors file or an index.json).
  const std::string& path() const { return path_; }

 private:
  struct Shard;  // an open file descriptor and its validated header
  std::string path_;
  std::vector<std::shared_ptr<Shard>> shards_;
  std::vector<StTensorInfo> tensors_;
  std::map<std::string, size_t> by_name_;        // name -> index in tensors_
  std::vector<size_t> shard_of_;                 // tensors_ index -> shards_ index
  std::map<std::string, std::string> metadata_;
};

// One tensor to write: float data in row-major order, prod(shape) elements.
struct StWriteTensor {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;
};

// A tensor to write whose data is asked for only when its turn comes (streaming export).
struct StTensorShape {
  std::string name;
  std::vector<int64_t> shape;
};
// Tensor i's prod(shape) float values: fills `buf` and returns buf.data(), or returns data the
// caller keeps alive. Called once per tensor, in order, right before its bytes are written.
using StTensorSource = std::function<const float*(size_t i, std::vector<float>& buf)>;

// Writes `tensors` into directory `dir` (created if needed) as dtype F32 or BF16 (round to nearest
// even; NaN stays NaN): one model.safetensors when everything fits in shard_bytes, otherwise
// model-00001-of-0000N.safetensors shards of at most ~shard_bytes each (a tensor larger than that gets
// a shard of its own) plus model.safetensors.index.json {"metadata": {"total_size": bytes},
// "weight_map": {name: file}}. Tensors keep the given order; headers carry "__metadata__":
// {"format": "pt"} and are padded to 8 bytes, as transformers writes them. Files are written under
// temporary names and renamed at the end; model*.safetensors / the index left in `dir` by an earlier
// write that are not part of this one are removed (a stale model.safetensors next to a new index would
// be loaded instead of it).
void write_safetensors(const std::string& dir, const std::vector<StWriteTensor>& tensors, StDType dtype,
                       uint64_t shard_bytes = 5'000'000'000ull);
// The same, streaming: the data of one tensor at a time comes from `source`, so the writer holds at
// most the largest tensor (in `buf`, reused) plus a small conversion buffer, whatever the model size.
void write_safetensors(const std::string& dir, const std::vector<StTensorShape>& tensors, StDType dtype,
                       uint64_t shard_bytes, const StTensorSource& source);

// Conversions used by the reader and writer (exposed for tests).
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);  // round to nearest even
float f16_to_f32(uint16_t h);

}  // namespace lct
