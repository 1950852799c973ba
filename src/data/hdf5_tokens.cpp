#include "data/hdf5_tokens.h"

#include <hdf5.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace lct {

namespace {

// Owns one HDF5 identifier and closes it with the matching call.
class Hid {
 public:
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Hid() {
    if (id_ >= 0) close_(id_);
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// HDF5 prints its error stack by default; inside this scope errors are ours to report.
class QuietHdf5 {
 public:
  QuietHdf5() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The innermost HDF5 error description, for messages.
std::string hdf5_reason() {
  std::string msg;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD,
           [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
             auto* s = static_cast<std::string*>(out);
             if (s->empty() && e->desc) *s = e->desc;
             return 0;
           },
           &msg);
  H5Eclear2(H5E_DEFAULT);
  return msg.empty() ? "unknown HDF5 error" : msg;
}

// A 1-D dataset stored as one contiguous, unfiltered block of little-endian integers.
struct RawArray {
  bool present = false;
  int64_t count = 0;
  int64_t offset = 0;  // byte offset in the file (meaningless when count == 0)
  TokenDType dtype;
};

RawArray raw_array(hid_t file, const char* name, const std::string& where, int64_t file_size, bool required) {
  RawArray a;
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    if (required) throw InputError(str(where, ": no /", name, " dataset; lctrain token files hold /tokens and /doc_offsets"));
    return a;
  }
  // The data is read by byte offset in THIS file: a soft or external link would give the offset of
  // another object or file, and the tokens read would be whatever lies there.
  H5L_info_t link{};
  if (H5Lget_info(file, name, &link, H5P_DEFAULT) < 0 || link.type != H5L_TYPE_HARD) {
    H5Eclear2(H5E_DEFAULT);
    throw InputError(str(where, ": /", name, " is a soft or external link; lctrain reads datasets stored in the file "
                         "itself (fix: h5repack or h5copy the data into one file)"));
  }
  Hid ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) throw InputError(str(where, ": cannot open /", name, ": ", hdf5_reason()));
  Hid space(H5Dget_space(ds.get()), H5Sclose);
  Hid type(H5Dget_type(ds.get()), H5Tclose);
  Hid dcpl(H5Dget_create_plist(ds.get()), H5Pclose);
  if (!space.ok() || !type.ok() || !dcpl.ok()) throw InputError(str(where, ": /", name, ": ", hdf5_reason()));
  if (H5Sget_simple_extent_ndims(space.get()) != 1)
    throw InputError(str(where, ": /", name, " must be 1-D"));
  hsize_t dim = 0;
  H5Sget_simple_extent_dims(space.get(), &dim, nullptr);
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_order(type.get()) != H5T_ORDER_LE)
    throw InputError(str(where, ": /", name, " must hold little-endian integers"));
  const size_t size = H5Tget_size(type.get());
  if (size != 1 && size != 2 && size != 4 && size != 8)
    throw InputError(str(where, ": /", name, " has ", size, "-byte integers; use 1, 2, 4 or 8"));
  a.dtype = {int(size), H5Tget_sign(type.get()) == H5T_SGN_2};
  if (H5Pget_layout(dcpl.get()) != H5D_CONTIGUOUS || H5Pget_nfilters(dcpl.get()) != 0 ||
      H5Pget_external_count(dcpl.get()) != 0)
    throw InputError(str(where, ": /", name, " is chunked, compressed or external; lctrain reads contiguous "
                         "datasets only (fix: h5repack -l ", name, ":CONTI -f NONE IN OUT)"));
  a.present = true;
  a.count = int64_t(dim);
  if (a.count > 0) {
    const haddr_t off = H5Dget_offset(ds.get());
    if (off == HADDR_UNDEF) throw InputError(str(where, ": /", name, " has no stored data"));
    a.offset = int64_t(off);
    const int64_t bytes = a.count * int64_t(size);
    if (a.count > file_size || a.offset < 0 || a.offset > file_size || bytes > file_size - a.offset)
      throw InputError(str(where, ": /", name, " (", a.count, " x ", size, " bytes at byte offset ", a.offset,
                           ") runs past the end of the file (", file_size, " bytes): truncated"));
  }
  return a;
}

bool root_has_attribute(hid_t file, const char* name) {
  if (H5Aexists(file, name) > 0) return true;
  H5Eclear2(H5E_DEFAULT);
  return false;
}

// One scalar attribute of the root group, opened and checked to be of class `cls` (`what` names it
// in the error: "one integer").
struct RootAttribute {
  Hid attr, type, space;
  RootAttribute(hid_t file, const char* name, const std::string& where, H5T_class_t cls, const char* what)
      : attr(H5Aopen(file, name, H5P_DEFAULT), H5Aclose),
        type(attr.ok() ? H5Aget_type(attr.get()) : -1, H5Tclose),
        space(attr.ok() ? H5Aget_space(attr.get()) : -1, H5Sclose) {
    if (!attr.ok() || !type.ok() || !space.ok())
      throw InputError(str(where, ": attribute ", name, ": ", hdf5_reason()));
    if (H5Tget_class(type.get()) != cls || H5Sget_simple_extent_npoints(space.get()) != 1)
      throw InputError(str(where, ": attribute ", name, " must be ", what));
  }
};

// An optional scalar integer attribute of the root group.
bool int_attribute(hid_t file, const char* name, const std::string& where, int64_t* out) {
  if (!root_has_attribute(file, name)) return false;
  const RootAttribute a(file, name, where, H5T_INTEGER, "one integer");
  if (H5Aread(a.attr.get(), H5T_NATIVE_INT64, out) < 0)
    throw InputError(str(where, ": attribute ", name, ": ", hdf5_reason()));
  return true;
}

// An optional scalar string attribute of the root group (fixed or variable length).
bool string_attribute(hid_t file, const char* name, const std::string& where, std::string* out) {
  if (!root_has_attribute(file, name)) return false;
  const RootAttribute a(file, name, where, H5T_STRING, "one string");
  const Hid &attr = a.attr, &type = a.type;
  if (H5Tis_variable_str(type.get()) > 0) {
    Hid mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    char* s = nullptr;
    if (H5Aread(attr.get(), mem.get(), &s) < 0) throw InputError(str(where, ": attribute ", name, ": ", hdf5_reason()));
    *out = s ? s : "";
    if (s) H5free_memory(s);
  } else {
    const size_t n = H5Tget_size(type.get());
    if (n == 0 || n > (1u << 20)) throw InputError(str(where, ": attribute ", name, " has a bad string size ", n));
    Hid mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), n);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
    std::vector<char> buf(n + 1, '\0');
    if (H5Aread(attr.get(), mem.get(), buf.data()) < 0)
      throw InputError(str(where, ": attribute ", name, ": ", hdf5_reason()));
    *out = std::string(buf.data(), strnlen(buf.data(), n));
  }
  return true;
}

class Hdf5Tokens : public TokenFile {
 public:
  Hdf5Tokens(TokenFileInfo info, ByteFile data, RawArray docs, RawArray mask)
      : TokenFile(std::move(info), std::move(data)), docs_(docs), mask_(mask) {}

  void read_document_starts(int64_t first, int64_t count, int64_t* out) const override {
    check_range(first, count, info_.num_documents + 1, "document");
    if (count == 0) return;
    data_.read(docs_.offset + first * 8, out, size_t(count) * 8);
    for (int64_t i = 0; i < count; ++i)  // validated at open; a file changed since must not crash us
      if (out[i] < 0 || out[i] > info_.num_tokens || (i > 0 && out[i] < out[i - 1]))
        throw InputError(str("HDF5 tokens ", info_.path, ": /doc_offsets changed since it was opened (byte offset ",
                             docs_.offset + (first + i) * 8, ")"));
  }

  void read_loss_mask(int64_t begin, int64_t count, uint8_t* out) const override {
    if (!mask_.present) return TokenFile::read_loss_mask(begin, count, out);
    check_range(begin, count, info_.num_tokens, "loss mask");
    if (count == 0) return;
    data_.read(mask_.offset + begin, out, size_t(count));
    for (int64_t i = 0; i < count; ++i)
      if (out[i] > 1)
        throw InputError(str("HDF5 tokens ", info_.path, ": loss_mask value ", int(out[i]), " at byte offset ",
                             mask_.offset + begin + i, " (token ", begin + i, "); entries are 0 or 1"));
  }

 private:
  RawArray docs_, mask_;
};

class Hdf5Writer : public TokenWriter {
 public:
  Hdf5Writer(const std::string& path, const WriterPlan& plan)
      : path_(path), partial_(path + ".partial"), plan_(plan) {
    try {
      create_file();
    } catch (...) {
      close_all();
      std::remove(partial_.c_str());
      throw;
    }
  }

  void create_file() {
    const std::string& path = path_;
    const WriterPlan& plan = plan_;
    QuietHdf5 quiet;
    Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    // Version-2 superblock and object headers: their metadata checksums turn a corrupted header into
    // an error instead of a misread.
    H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    // The root group's object header would carry creation times too: the file-creation list is a
    // group-creation list, so switching time tracking off there keeps output byte-reproducible.
    Hid fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
    H5Pset_obj_track_times(fcpl.get(), 0);
    file_ = H5Fcreate(partial_.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get());
    if (file_ < 0) throw InputError(str(path, ": cannot create HDF5 file: ", hdf5_reason()));
    hid_t id_type = -1;
    switch (plan.dtype.bytes * (plan.dtype.is_signed ? -1 : 1)) {
      case 1: id_type = H5T_STD_U8LE; break;
      case -1: id_type = H5T_STD_I8LE; break;
      case 2: id_type = H5T_STD_U16LE; break;
      case 4: id_type = H5T_STD_U32LE; break;
      case -2: id_type = H5T_STD_I16LE; break;
      case -4: id_type = H5T_STD_I32LE; break;
      case -8: id_type = H5T_STD_I64LE; break;
      default: throw InputError(str(path, ": no HDF5 token type for ", dtype_name(plan.dtype)));
    }
    tokens_ = create(path, "tokens", id_type, plan.num_tokens);
    docs_ = create(path, "doc_offsets", H5T_STD_I64LE, plan.num_documents + 1);
    if (plan.loss_mask) mask_ = create(path, "loss_mask", H5T_STD_U8LE, plan.num_tokens);
    int_attr("format_version", kHdf5TokensFormatVersion);
    int_attr("vocab_size", plan.vocab_size);
    int_attr("eod_token", plan.eod_token);
    // A fixed-length string lives in the (checksummed) object header; a variable-length one would
    // live in the global heap, which has no checksum and which HDF5 trusts blindly when reading.
    Hid str_type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(str_type.get(), std::max<size_t>(plan.tokenizer.size(), 1));
    H5Tset_strpad(str_type.get(), H5T_STR_NULLPAD);
    H5Tset_cset(str_type.get(), H5T_CSET_UTF8);
    Hid space(H5Screate(H5S_SCALAR), H5Sclose);
    Hid a(H5Acreate2(file_, "tokenizer", str_type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    std::string s = plan.tokenizer;
    s.resize(std::max<size_t>(s.size(), 1), '\0');
    if (!a.ok() || H5Awrite(a.get(), str_type.get(), s.data()) < 0)
      throw Error(kExitFailure, str(path, ": cannot write attribute tokenizer: ", hdf5_reason()));
    offsets_.reserve(size_t(plan.num_documents + 1));
    offsets_.push_back(0);
  }

  ~Hdf5Writer() override {
    close_all();
    if (!finished_) std::remove(partial_.c_str());
  }

  void append(const int32_t* tokens, const uint8_t* mask, int64_t n) override {
    if (plan_.num_tokens - pos_ - int64_t(buf_.size()) < n)
      throw Error(kExitFailure, str(path_, ": more tokens than the ", plan_.num_tokens, " planned"));
    const int bits = plan_.dtype.bytes * 8 - (plan_.dtype.is_signed ? 1 : 0);
    const int64_t hi = bits >= 63 ? INT64_MAX : (int64_t(1) << bits) - 1;
    for (int64_t i = 0; i < n; ++i)
      if (tokens[i] < (plan_.dtype.is_signed ? INT32_MIN : 0) || tokens[i] > hi)
        throw InputError(str(path_, ": token id ", tokens[i], " does not fit the file's ", dtype_name(plan_.dtype),
                             " ids; use a wider type (a larger vocab_size picks uint32)"));
    buf_.insert(buf_.end(), tokens, tokens + n);
    if (plan_.loss_mask) {
      LCT_CHECK(mask || n == 0, "HDF5 writer planned a loss mask but got none");
      for (int64_t i = 0; i < n; ++i) LCT_CHECK(mask[i] <= 1, "loss mask entries are 0 or 1");
      mask_buf_.insert(mask_buf_.end(), mask, mask + n);
    }
    if (buf_.size() >= (1u << 20)) flush();
  }

  void end_document() override {
    if (int64_t(offsets_.size()) > plan_.num_documents)
      throw Error(kExitFailure, str(path_, ": more documents than the ", plan_.num_documents, " planned"));
    offsets_.push_back(pos_ + int64_t(buf_.size()));
  }

  void finish() override {
    flush();
    LCT_CHECK(pos_ == plan_.num_tokens && int64_t(offsets_.size()) == plan_.num_documents + 1,
              "HDF5 writer got ", pos_, " tokens in ", offsets_.size() - 1, " documents, planned ",
              plan_.num_tokens, " in ", plan_.num_documents);
    write_range(docs_, H5T_NATIVE_INT64, 0, int64_t(offsets_.size()), offsets_.data());
    close_all();
    if (std::rename(partial_.c_str(), path_.c_str()) != 0)
      throw Error(kExitFailure, str(path_, ": cannot rename ", partial_, " into place"));
    finished_ = true;
  }

 private:
  hid_t create(const std::string& path, const char* name, hid_t type, int64_t n) {
    Hid dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS);
    H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
    H5Pset_obj_track_times(dcpl.get(), 0);
    hsize_t dim = hsize_t(n);
    Hid space(H5Screate_simple(1, &dim, nullptr), H5Sclose);
    hid_t ds = H5Dcreate2(file_, name, type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT);
    if (ds < 0) throw Error(kExitFailure, str(path, ": cannot create /", name, ": ", hdf5_reason()));
    return ds;
  }

  void int_attr(const char* name, int64_t v) {
    Hid space(H5Screate(H5S_SCALAR), H5Sclose);
    Hid a(H5Acreate2(file_, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!a.ok() || H5Awrite(a.get(), H5T_NATIVE_INT64, &v) < 0)
      throw Error(kExitFailure, str(path_, ": cannot write attribute ", name, ": ", hdf5_reason()));
  }

  void write_range(hid_t ds, hid_t mem_type, int64_t at, int64_t n, const void* data) {
    if (n == 0) return;
    QuietHdf5 quiet;
    Hid fspace(H5Dget_space(ds), H5Sclose);
    hsize_t start = hsize_t(at), count = hsize_t(n);
    H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr);
    Hid mspace(H5Screate_simple(1, &count, nullptr), H5Sclose);
    if (H5Dwrite(ds, mem_type, mspace.get(), fspace.get(), H5P_DEFAULT, data) < 0)
      throw Error(kExitFailure, str(path_, ": HDF5 write failed: ", hdf5_reason()));
  }

  void flush() {
    write_range(tokens_, H5T_NATIVE_INT32, pos_, int64_t(buf_.size()), buf_.data());
    if (plan_.loss_mask) write_range(mask_, H5T_NATIVE_UINT8, pos_, int64_t(mask_buf_.size()), mask_buf_.data());
    pos_ += int64_t(buf_.size());
    buf_.clear();
    mask_buf_.clear();
  }

  void close_all() {
    for (hid_t* d : {&tokens_, &docs_, &mask_})
      if (*d >= 0) H5Dclose(*d), *d = -1;
    if (file_ >= 0) H5Fclose(file_), file_ = -1;
  }

  std::string path_, partial_;
  WriterPlan plan_;
  hid_t file_ = -1, tokens_ = -1, docs_ = -1, mask_ = -1;
  std::vector<int32_t> buf_;
  std::vector<uint8_t> mask_buf_;
  std::vector<int64_t> offsets_;
  int64_t pos_ = 0;
  bool finished_ = false;
};

}  // namespace

bool is_hdf5_signature(const uint8_t* p) { return std::memcmp(p, "\x89HDF\r\n\x1a\n", 8) == 0; }

std::unique_ptr<TokenFile> open_hdf5_tokens(const std::string& path) {
  ByteFile f(path);
  const std::string where = str("HDF5 tokens ", path);
  uint8_t sig[8] = {0};
  if (f.size() < 8) throw InputError(str(where, ": truncated: ", f.size(), " bytes, not an HDF5 file"));
  f.read(0, sig, 8);
  if (!is_hdf5_signature(sig)) throw InputError(str(where, ": wrong signature at byte offset 0; not an HDF5 file"));

  TokenFileInfo info;
  info.format = TokenFormat::Hdf5;
  info.path = info.data_path = path;
  RawArray tokens, docs, mask;
  {
    QuietHdf5 quiet;
    // Serial open; "strong" close so that closing the file also closes anything a failed read
    // of a damaged file left open inside the library.
    Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
    Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
    if (!file.ok()) throw InputError(str(where, ": HDF5 cannot open it (corrupt or truncated?): ", hdf5_reason()));
    int64_t version = 0;
    if (!int_attribute(file.get(), "format_version", where, &version))
      throw InputError(str(where, ": no format_version attribute; not an lctrain token file (see docs/data.md)"));
    if (version != kHdf5TokensFormatVersion)
      throw InputError(str(where, ": format_version ", version, "; this build reads version ", kHdf5TokensFormatVersion));
    info.version = version;
    int64_t v = 0;
    if (int_attribute(file.get(), "vocab_size", where, &v)) {
      if (v < 0 || v > int64_t(INT32_MAX) + 1) throw InputError(str(where, ": attribute vocab_size = ", v, " is out of range"));
      info.vocab_size = v;
    }
    if (int_attribute(file.get(), "eod_token", where, &v)) {
      if (v < -1 || v > INT32_MAX || (info.vocab_size > 0 && v >= info.vocab_size))
        throw InputError(str(where, ": attribute eod_token = ", v, " is not -1 or an id below vocab_size ", info.vocab_size));
      info.eod_token = int32_t(v);
    }
    string_attribute(file.get(), "tokenizer", where, &info.tokenizer);
    tokens = raw_array(file.get(), "tokens", where, f.size(), true);
    docs = raw_array(file.get(), "doc_offsets", where, f.size(), true);
    mask = raw_array(file.get(), "loss_mask", where, f.size(), false);
  }
  info.dtype = tokens.dtype;
  info.num_tokens = tokens.count;
  info.tokens_offset = tokens.offset;
  if (docs.dtype.bytes != 8) throw InputError(str(where, ": /doc_offsets must be int64"));
  if (docs.count < 1) throw InputError(str(where, ": /doc_offsets is empty; it holds documents + 1 entries, the first 0"));
  info.num_documents = docs.count - 1;
  if (mask.present) {
    if (mask.dtype.bytes != 1) throw InputError(str(where, ": /loss_mask must be uint8"));
    if (mask.count != tokens.count)
      throw InputError(str(where, ": /loss_mask has ", mask.count, " entries for ", tokens.count, " tokens"));
    info.has_loss_mask = true;
  }
  // Document offsets: from 0, non-decreasing, ending at the token count (checked in pieces).
  std::vector<int64_t> buf;
  int64_t prev = 0;
  for (int64_t i = 0; i < docs.count; i += 1 << 16) {
    const int64_t m = std::min<int64_t>(1 << 16, docs.count - i);
    buf.resize(size_t(m));
    f.read(docs.offset + 8 * i, buf.data(), size_t(m) * 8);
    for (int64_t j = 0; j < m; ++j) {
      const int64_t k = i + j, o = buf[size_t(j)];
      const bool ok = (k > 0 || o == 0) && (k < docs.count - 1 || o == tokens.count) && o >= prev && o <= tokens.count;
      if (!ok)
        throw InputError(str(where, ": /doc_offsets[", k, "] = ", o, " at byte offset ", docs.offset + 8 * k,
                             "; offsets rise from 0 to the token count ", tokens.count));
      prev = o;
    }
  }
  return std::make_unique<Hdf5Tokens>(std::move(info), std::move(f), docs, mask);
}

std::unique_ptr<TokenWriter> make_hdf5_writer(const std::string& path, const WriterPlan& plan) {
  return std::make_unique<Hdf5Writer>(path, plan);
}

}  // namespace lct
