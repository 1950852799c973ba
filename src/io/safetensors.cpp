#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; add byte swaps");

namespace lct {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // safetensors' own limit is 100 MB
constexpr int kMaxJsonDepth = 16;                   // a tensor header is 4 levels deep
constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

struct DTypeRow {
  StDType t;
  const char* name;
  size_t size;
};
constexpr DTypeRow kDTypes[] = {
    {StDType::BOOL, "BOOL", 1},       {StDType::U8, "U8", 1},     {StDType::I8, "I8", 1},
    {StDType::I16, "I16", 2},         {StDType::U16, "U16", 2},   {StDType::I32, "I32", 4},
    {StDType::U32, "U32", 4},         {StDType::I64, "I64", 8},   {StDType::U64, "U64", 8},
    {StDType::F8_E4M3, "F8_E4M3", 1}, {StDType::F8_E5M2, "F8_E5M2", 1},
    {StDType::F16, "F16", 2},         {StDType::BF16, "BF16", 2}, {StDType::F32, "F32", 4},
    {StDType::F64, "F64", 8},
};

std::string errno_text() { return std::strerror(errno); }

// A read-only file descriptor; closed on destruction.
class InFile {
 public:
  explicit InFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw InputError(str(path, ": cannot open: ", errno_text()));
    struct stat st;
    if (::fstat(fd_, &st) != 0) throw InputError(str(path, ": cannot stat: ", errno_text()));
    if (!S_ISREG(st.st_mode)) throw InputError(str(path, ": not a regular file"));
    size_ = uint64_t(st.st_size);
  }
  ~InFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  InFile(const InFile&) = delete;
  InFile& operator=(const InFile&) = delete;

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Reads exactly n bytes at `offset`; a short read means the file shrank after open().
  void read_at(uint64_t offset, void* dst, uint64_t n) const {
    char* p = static_cast<char*>(dst);
    while (n > 0) {
      size_t want = size_t(std::min<uint64_t>(n, 1u << 30));
      ssize_t got = ::pread(fd_, p, want, off_t(offset));
      if (got < 0) {
        if (errno == EINTR) continue;
        throw InputError(str(path_, ": read of ", n, " bytes at byte ", offset, " failed: ", errno_text()));
      }
      if (got == 0)
        throw InputError(str(path_, ": unexpected end of file at byte ", offset,
                             " (the file was truncated after it was opened?)"));
      p += got;
      offset += uint64_t(got);
      n -= uint64_t(got);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Parses JSON text with a nesting limit and, at the top level, no repeated key (nlohmann would keep
// the last silently). `base` is the file offset of text[0], so errors name file bytes.
nlohmann::json parse_json(const std::string& text, const std::string& path, uint64_t base, const char* what) {
  std::set<std::string> top_keys;
  auto cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    if (depth > kMaxJsonDepth)
      throw InputError(str(path, ": ", what, " nests deeper than ", kMaxJsonDepth, " levels: not a valid ", what));
    if (ev == nlohmann::json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!top_keys.insert(k).second)
        throw InputError(str(path, ": ", what, " has the key \"", k, "\" twice; each name must appear once"));
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text, cb);
  } catch (const nlohmann::json::parse_error& e) {
    uint64_t at = base + (e.byte > 0 ? e.byte - 1 : 0);
    throw InputError(str(path, ": ", what, " is not valid JSON (byte ", at, "): ", e.what()));
  } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range: a number too large for a double
    throw InputError(str(path, ": ", what, " is not valid JSON: ", e.what()));
  }
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return true;
  *out = a * b;
  return false;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

bool json_u64(const nlohmann::json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = uint64_t(v.get<int64_t>());
    return true;
  }
  return false;
}

}  // namespace

const char* st_dtype_name(StDType t) {
  for (const auto& r : kDTypes)
    if (r.t == t) return r.name;
  return "?";
}

size_t st_dtype_size(StDType t) {
  for (const auto& r : kDTypes)
    if (r.t == t) return r.size;
  return 0;
}

bool st_dtype_parse(const std::string& name, StDType* out) {
  for (const auto& r : kDTypes)
    if (name == r.name) {
      *out = r.t;
      return true;
    }
  return false;
}

int64_t StTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated at open(): no overflow
  return n;
}

// ---- conversions ----

float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // NaN: keep it a (quiet) NaN
  u += 0x7fffu + ((u >> 16) & 1u);                                        // round to nearest, ties to even
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (man << 13);  // inf / NaN
  } else if (exp != 0) {
    u = sign | ((exp + 112) << 23) | (man << 13);  // normal: rebias 15 -> 127
  } else if (man == 0) {
    u = sign;  // signed zero
  } else {     // subnormal: normalise the mantissa
    int e = -1;
    do {
      ++e;
      man <<= 1;
    } while ((man & 0x400u) == 0);
    u = sign | (uint32_t(112 - e) << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- reader ----

struct SafetensorsReader::Shard {
  explicit Shard(const std::string& p) : file(p) {}
  InFile file;
  uint64_t data_start = 0;  // 8 + header length
  std::vector<StTensorInfo> tensors;  // sorted by begin
  std::map<std::string, std::string> metadata;
};

namespace {

// Reads and validates one file's header: the tensors (sorted by data offset) and "__metadata__".
void parse_header(const InFile& f, uint64_t* data_start, std::vector<StTensorInfo>* tensors,
                         std::map<std::string, std::string>* metadata) {
  const std::string& path = f.path();
  if (f.size() < 8)
    throw InputError(str(path, ": file is ", f.size(),
                         " bytes, shorter than the 8-byte header length of a safetensors file"));
  unsigned char lenbuf[8];
  f.read_at(0, lenbuf, 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | lenbuf[i];
  if (n > kMaxHeaderBytes)
    throw InputError(str(path, ": header length ", n, " (u64 at byte 0) is larger than the ", kMaxHeaderBytes,
                         "-byte limit: corrupt, or not a safetensors file"));
  if (n > f.size() - 8)
    throw InputError(str(path, ": header length ", n, " (u64 at byte 0) runs past the end of the file (",
                         f.size(), " bytes): the file is truncated or not a safetensors file"));
  std::string text(size_t(n), '\0');
  f.read_at(8, text.data(), n);
  nlohmann::json h = parse_json(text, path, 8, "safetensors header");
  if (!h.is_object())
    throw InputError(str(path, ": safetensors header (bytes 8..", 8 + n, ") is JSON but not an object"));

  *data_start = 8 + n;
  const uint64_t data_size = f.size() - *data_start;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& e = it.value();
    if (name == "__metadata__") {
      if (!e.is_object()) throw InputError(str(path, ": \"__metadata__\" must be an object of strings"));
      for (auto m = e.begin(); m != e.end(); ++m) {
        if (!m.value().is_string())
          throw InputError(str(path, ": \"__metadata__\" entry \"", m.key(), "\" is not a string"));
        (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    std::string where = str(path, ": tensor \"", name, "\"");
    if (!e.is_object()) throw InputError(str(where, ": header entry is not an object"));
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!e.contains(key))
        throw InputError(str(where, ": header entry has no \"", key,
                             "\" (each tensor needs dtype, shape and data_offsets)"));
    StTensorInfo t;
    t.name = name;
    t.file = path;
    const auto& jd = e["dtype"];
    if (!jd.is_string() || !st_dtype_parse(jd.get<std::string>(), &t.dtype))
      throw InputError(str(where, ": unknown dtype ", jd.dump(),
                           " (known: BOOL U8 I8 I16 U16 I32 U32 I64 U64 F8_E4M3 F8_E5M2 F16 BF16 F32 F64)"));
    const auto& js = e["shape"];
    if (!js.is_array()) throw InputError(str(where, ": \"shape\" is not an array"));
    uint64_t numel = 1;
    for (const auto& d : js) {
      uint64_t v;
      if (!json_u64(d, &v) || v > uint64_t(std::numeric_limits<int64_t>::max()))
        throw InputError(str(where, ": \"shape\" entry ", d.dump(), " is not a non-negative integer"));
      if (mul_overflows(numel, v, &numel) || numel > uint64_t(std::numeric_limits<int64_t>::max()))
        throw InputError(str(where, ": shape ", js.dump(), " has too many elements"));
      t.shape.push_back(int64_t(v));
    }
    const auto& jo = e["data_offsets"];
    if (!jo.is_array() || jo.size() != 2 || !json_u64(jo[0], &t.begin) || !json_u64(jo[1], &t.end))
      throw InputError(str(where, ": \"data_offsets\" must be [begin, end] of non-negative integers, got ",
                           jo.dump()));
    if (t.begin > t.end)
      throw InputError(str(where, ": data_offsets [", t.begin, ", ", t.end, "] are reversed (begin > end)"));
    if (t.end > data_size)
      throw InputError(str(where, ": data_offsets [", t.begin, ", ", t.end, "] end at byte ", *data_start + t.end,
                           ", past the end of the file (", f.size(), " bytes; data section holds ", data_size,
                           "): truncated file or corrupt header"));
    uint64_t bytes;
    if (mul_overflows(numel, st_dtype_size(t.dtype), &bytes) || bytes != t.end - t.begin)
      throw InputError(str(where, ": data_offsets [", t.begin, ", ", t.end, "] span ", t.end - t.begin,
                           " bytes but shape ", shape_text(t.shape), " x ", st_dtype_name(t.dtype), " needs ",
                           numel, " x ", st_dtype_size(t.dtype), " bytes"));
    tensors->push_back(std::move(t));
  }
  std::sort(tensors->begin(), tensors->end(), [](const StTensorInfo& a, const StTensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < tensors->size(); ++i) {
    const auto& a = (*tensors)[i - 1];
    const auto& b = (*tensors)[i];
    if (b.begin < a.end)
      throw InputError(str(path, ": tensors \"", a.name, "\" (bytes ", *data_start + a.begin, "..",
                           *data_start + a.end, ") and \"", b.name, "\" (bytes ", *data_start + b.begin, "..",
                           *data_start + b.end, ") overlap"));
  }
}

// Only plain relative names inside the index's folder (no absolute path, no "..").
bool safe_relative(const std::string& name) {
  if (name.empty() || name[0] == '/') return false;
  for (const auto& part : fs::path(name))
    if (part == "..") return false;
  return true;
}

std::string read_text_file(const std::string& path, const char* what) {
  InFile f(path);
  if (f.size() > kMaxHeaderBytes)
    throw InputError(str(path, ": ", what, " is ", f.size(), " bytes, over the ", kMaxHeaderBytes, "-byte limit"));
  std::string text(size_t(f.size()), '\0');
  f.read_at(0, text.data(), f.size());
  return text;
}
}  // namespace

SafetensorsReader SafetensorsReader::open(const std::string& path_in) {
  std::error_code ec;
  std::string path = path_in;
  if (!fs::exists(path, ec))
    throw InputError(str(path, ": no such file or directory (expected a .safetensors file, ", kIndexName,
                         ", or a directory holding one)"));
  if (fs::is_directory(path, ec)) {
    fs::path d(path);
    if (fs::exists(d / kSingleName, ec)) {
      path = (d / kSingleName).string();
    } else if (fs::exists(d / kIndexName, ec)) {
      path = (d / kIndexName).string();
    } else {
      std::vector<std::string> found;
      for (const auto& ent : fs::directory_iterator(d, ec))
        if (ent.path().extension() == ".safetensors") found.push_back(ent.path().string());
      std::sort(found.begin(), found.end());
      if (found.size() != 1) {
        std::string list;
        for (const auto& s : found) list += "\n  " + s;
        throw InputError(str(path, ": directory has no ", kSingleName, " or ", kIndexName, " and ",
                             found.size(), " *.safetensors files", list,
                             found.empty() ? "" : "\npass one file or write an index.json"));
      }
      path = found[0];
    }
  }

  SafetensorsReader r;
  r.path_ = path;
  const bool is_index = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  if (!is_index) {
    auto sh = std::make_shared<Shard>(path);
    parse_header(sh->file, &sh->data_start, &sh->tensors, &sh->metadata);
    r.shards_.push_back(sh);
    r.metadata_ = sh->metadata;
    for (const auto& t : sh->tensors) {
      r.by_name_[t.name] = r.tensors_.size();
      r.tensors_.push_back(t);
      r.shard_of_.push_back(0);
    }
    return r;
  }

  // Sharded set: the index maps each tensor to a shard file in the same folder.
  nlohmann::json idx = parse_json(read_text_file(path, "index"), path, 0, "index");
  if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
    throw InputError(str(path, ": not a safetensors index: expected an object with a \"weight_map\" object "
                               "{tensor name: shard file}"));
  const fs::path dir = fs::path(path).parent_path();
  std::map<std::string, std::vector<std::string>> names_by_file;  // shard file -> tensor names
  for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
    if (!it.value().is_string())
      throw InputError(str(path, ": weight_map entry \"", it.key(), "\" is not a file name string"));
    const std::string file = it.value().get<std::string>();
    if (!safe_relative(file))
      throw InputError(str(path, ": weight_map entry \"", it.key(), "\" names \"", file,
                           "\"; shard files must be relative names inside the index's folder"));
    names_by_file[file].push_back(it.key());
  }
  for (const auto& [file, names] : names_by_file) {
    const std::string shard_path = (dir / file).string();
    if (!fs::is_regular_file(shard_path, ec))
      throw InputError(str(path, ": weight_map maps tensor \"", names[0], "\" to shard \"", file, "\" but ",
                           shard_path, " does not exist"));
    auto sh = std::make_shared<Shard>(shard_path);
    parse_header(sh->file, &sh->data_start, &sh->tensors, &sh->metadata);
    const std::set<std::string> wanted(names.begin(), names.end());
    for (const auto& n : wanted) {
      bool present = std::any_of(sh->tensors.begin(), sh->tensors.end(),
                                 [&](const StTensorInfo& t) { return t.name == n; });
      if (!present)
        throw InputError(str(path, ": weight_map maps tensor \"", n, "\" to ", shard_path,
                             " but that shard has no such tensor"));
    }
    const size_t si = r.shards_.size();
    r.shards_.push_back(sh);
    // Tensors a shard holds but the index does not list are ignored, as transformers ignores them.
    for (const auto& t : sh->tensors) {
      if (!wanted.count(t.name)) continue;
      r.by_name_[t.name] = r.tensors_.size();
      r.tensors_.push_back(t);
      r.shard_of_.push_back(si);
    }
  }
  if (!r.shards_.empty()) r.metadata_ = r.shards_[0]->metadata;
  if (idx.contains("metadata") && idx["metadata"].is_object())
    for (auto m = idx["metadata"].begin(); m != idx["metadata"].end(); ++m)
      r.metadata_[m.key()] = m.value().is_string() ? m.value().get<std::string>() : m.value().dump();
  return r;
}

bool SafetensorsReader::has(const std::string& name) const { return by_name_.count(name) != 0; }

const StTensorInfo& SafetensorsReader::info(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end())
    throw InputError(str(path_, ": no tensor named \"", name, "\" (", tensors_.size(), " tensors; is this the",
                         " right checkpoint, and are names in Hugging Face form, e.g. model.norm.weight?)"));
  return tensors_[it->second];
}

void SafetensorsReader::read_f32(const std::string& name, int64_t offset, int64_t count, float* out) const {
  const StTensorInfo& t = info(name);
  const Shard& sh = *shards_[shard_of_[by_name_.at(name)]];
  const int64_t numel = t.numel();
  if (offset < 0 || count < 0 || offset > numel || count > numel - offset)
    throw InputError(str(t.file, ": tensor \"", name, "\" has ", numel, " elements (shape ", shape_text(t.shape),
                         "); cannot read elements [", offset, ", ", offset, " + ", count, ")"));
  if (t.dtype != StDType::F32 && t.dtype != StDType::BF16 && t.dtype != StDType::F16 && t.dtype != StDType::F64)
    throw InputError(str(t.file, ": tensor \"", name, "\" has dtype ", st_dtype_name(t.dtype),
                         "; only F32, BF16, F16 and F64 tensors can be read as float"));
  if (count == 0) return;
  const size_t es = st_dtype_size(t.dtype);
  const uint64_t at = sh.data_start + t.begin + uint64_t(offset) * es;
  if (t.dtype == StDType::F32) {
    sh.file.read_at(at, out, uint64_t(count) * 4);
    return;
  }
  // Other dtypes go through a bounded staging buffer, converted chunk by chunk.
  const int64_t chunk = std::min<int64_t>(count, int64_t(1) << 18);
  std::vector<unsigned char> buf(size_t(chunk) * es);
  for (int64_t done = 0; done < count; done += chunk) {
    const int64_t n = std::min(chunk, count - done);
    sh.file.read_at(at + uint64_t(done) * es, buf.data(), uint64_t(n) * es);
    float* o = out + done;
    const unsigned char* b = buf.data();
    if (t.dtype == StDType::BF16 || t.dtype == StDType::F16) {
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, b + 2 * i, 2);
        o[i] = t.dtype == StDType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
      }
    } else {  // F64
      for (int64_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, b + 8 * i, 8);
        o[i] = float(d);
      }
    }
  }
}

// ---- writer ----

namespace {

struct OutFile {
  std::string path;
  FILE* f = nullptr;
  explicit OutFile(const std::string& p) : path(p) {
    f = std::fopen(p.c_str(), "wb");
    if (!f) throw Error(kExitFailure, str(p, ": cannot create: ", errno_text()));
  }
  ~OutFile() {
    if (f) std::fclose(f);
  }
  void write(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f) != n) throw Error(kExitFailure, str(path, ": write failed: ", errno_text()));
  }
  void close() {
    FILE* g = f;
    f = nullptr;
    if (std::fclose(g) != 0) throw Error(kExitFailure, str(path, ": write failed on close: ", errno_text()));
  }
};

struct PlannedTensor {
  const StTensorShape* t;
  size_t index;
  uint64_t numel, bytes;
};

void write_one_file(const std::string& path, const std::vector<PlannedTensor>& ts, StDType dtype,
                    const StTensorSource& source, std::vector<float>& buf) {
  nlohmann::ordered_json h;
  h["__metadata__"] = {{"format", "pt"}};
  uint64_t off = 0;
  for (const auto& p : ts) {
    nlohmann::ordered_json e;
    e["dtype"] = st_dtype_name(dtype);
    e["shape"] = p.t->shape;
    e["data_offsets"] = {off, off + p.bytes};
    h[p.t->name] = e;
    off += p.bytes;
  }
  std::string text = h.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');  // data starts 8-byte aligned, as safetensors pads
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = (uint64_t(text.size()) >> (8 * i)) & 0xff;

  OutFile out(path);
  out.write(len, 8);
  out.write(text.data(), text.size());
  std::vector<uint16_t> half;
  for (const auto& p : ts) {
    const float* data = p.numel ? source(p.index, buf) : nullptr;
    LCT_CHECK(p.numel == 0 || data != nullptr, "tensor ", p.t->name, " has no data");
    if (dtype == StDType::F32) {
      out.write(data, p.bytes);
      continue;
    }
    const uint64_t chunk = 1u << 18;
    half.resize(size_t(std::min(chunk, p.numel)));
    for (uint64_t i = 0; i < p.numel; i += chunk) {
      const uint64_t n = std::min(chunk, p.numel - i);
      for (uint64_t j = 0; j < n; ++j) half[j] = f32_to_bf16(data[i + j]);
      out.write(half.data(), n * 2);
    }
  }
  out.close();
}

bool is_our_output_name(const std::string& n) {
  if (n == kSingleName || n == kIndexName) return true;
  return n.rfind("model-", 0) == 0 && n.find("-of-") != std::string::npos && n.size() > 12 &&
         n.compare(n.size() - 12, 12, ".safetensors") == 0;
}

std::string shard_name(size_t k, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", k, n);
  return buf;
}

}  // namespace

void write_safetensors(const std::string& dir, const std::vector<StWriteTensor>& tensors, StDType dtype,
                       uint64_t shard_bytes) {
  std::vector<StTensorShape> shapes;
  for (const auto& t : tensors) shapes.push_back({t.name, t.shape});
  write_safetensors(dir, shapes, dtype, shard_bytes, [&](size_t i, std::vector<float>&) { return tensors[i].data; });
}

void write_safetensors(const std::string& dir, const std::vector<StTensorShape>& tensors, StDType dtype,
                       uint64_t shard_bytes, const StTensorSource& source) {
  if (dtype != StDType::F32 && dtype != StDType::BF16)
    throw InputError(str("safetensors output dtype ", st_dtype_name(dtype), " is not supported; use F32 or BF16"));
  if (shard_bytes == 0) throw InputError("safetensors shard size must be positive");
  const size_t es = st_dtype_size(dtype);
  std::vector<PlannedTensor> plan;
  std::set<std::string> names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const StTensorShape& t = tensors[i];
    if (t.name.empty() || t.name == "__metadata__")
      throw InputError(str("cannot write a safetensors tensor named \"", t.name, "\""));
    if (!names.insert(t.name).second)
      throw InputError(str("tensor \"", t.name, "\" is given twice to write_safetensors"));
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw InputError(str("tensor \"", t.name, "\" has a negative dimension ", shape_text(t.shape)));
      LCT_CHECK(!mul_overflows(numel, uint64_t(d), &numel), t.name);
    }
    plan.push_back({&t, i, numel, numel * es});
  }

  // Greedy split in the given order, as transformers' shard_checkpoint does.
  std::vector<std::vector<PlannedTensor>> shards(1);
  uint64_t cur = 0, total = 0;
  for (const auto& p : plan) {
    if (!shards.back().empty() && cur + p.bytes > shard_bytes) {
      shards.emplace_back();
      cur = 0;
    }
    shards.back().push_back(p);
    cur += p.bytes;
    total += p.bytes;
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) throw Error(kExitFailure, str(dir, ": cannot create output directory"));
  const fs::path d(dir);

  std::vector<std::string> finals;
  std::vector<float> buf;  // one tensor's data at a time
  if (shards.size() == 1) {
    finals.push_back(kSingleName);
    write_one_file((d / (std::string(kSingleName) + ".tmp")).string(), shards[0], dtype, source, buf);
  } else {
    nlohmann::ordered_json wm;
    for (size_t k = 0; k < shards.size(); ++k) {
      const std::string name = shard_name(k + 1, shards.size());
      finals.push_back(name);
      write_one_file((d / (name + ".tmp")).string(), shards[k], dtype, source, buf);
      for (const auto& p : shards[k]) wm[p.t->name] = name;
    }
    nlohmann::ordered_json idx;
    idx["metadata"] = {{"total_size", total}};
    idx["weight_map"] = wm;
    finals.push_back(kIndexName);
    OutFile out((d / (std::string(kIndexName) + ".tmp")).string());
    const std::string text = idx.dump(2) + "\n";
    out.write(text.data(), text.size());
    out.close();
  }

  // Remove outputs of an earlier write that this one does not replace, then move the new files in.
  const std::set<std::string> keep(finals.begin(), finals.end());
  for (const auto& ent : fs::directory_iterator(d, ec)) {
    const std::string n = ent.path().filename().string();
    if (is_our_output_name(n) && !keep.count(n)) fs::remove(ent.path(), ec);
  }
  for (const auto& n : finals) {
    fs::rename(d / (n + ".tmp"), d / n, ec);
    if (ec) throw Error(kExitFailure, str((d / n).string(), ": cannot move into place: ", ec.message()));
  }
}

}  // namespace lct
