#include "data/megatron_indexed.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "data/file_writer.h"

namespace lct {

bool megatron_dtype(int code, TokenDType* out) {
  switch (code) {
    case 1: *out = {1, false}; return true;
    case 2: *out = {1, true}; return true;
    case 3: *out = {2, true}; return true;
    case 4: *out = {4, true}; return true;
    case 5: *out = {8, true}; return true;
    case 8: *out = {2, false}; return true;
    default: return false;  // 6 float64, 7 float32, anything else
  }
}

int megatron_dtype_code(TokenDType t) {
  for (int code : {1, 2, 3, 4, 5, 8}) {
    TokenDType d;
    megatron_dtype(code, &d);
    if (d.bytes == t.bytes && d.is_signed == t.is_signed) return code;
  }
  return 0;
}

static bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

std::string megatron_prefix(const std::string& path) {
  if (ends_with(path, ".idx") || ends_with(path, ".bin")) return path.substr(0, path.size() - 4);
  return path;
}

namespace {

// Where the arrays of a validated index live in the .idx file.
struct MegatronLayout {
  int64_t S = 0, D = 0;
  int64_t lengths_at = 0, pointers_at = 0, doc_index_at = 0;
};

class MegatronDataset : public TokenFile {
 public:
  MegatronDataset(TokenFileInfo info, ByteFile bin, ByteFile idx, MegatronLayout lay)
      : TokenFile(std::move(info), std::move(bin)), idx_(std::move(idx)), lay_(lay) {}

  void read_document_starts(int64_t first, int64_t count, int64_t* out) const override {
    check_range(first, count, info_.num_documents + 1, "document");
    if (count == 0) return;
    // Document k starts at sequence doc_index[k]; sequence s starts at token pointers[s] / itemsize
    // (validated at open: the sequences are back to back from 0).
    std::vector<int64_t> seq(static_cast<size_t>(count));
    idx_.read(lay_.doc_index_at + first * 8, seq.data(), size_t(count) * 8);
    const int64_t s0 = seq.front(), s1 = seq.back();
    for (int64_t i = 0; i < count; ++i)  // validated at open; a file changed since then must not crash us
      if (seq[size_t(i)] < s0 || seq[size_t(i)] > s1 || s1 > lay_.S || s0 < 0)
        throw InputError(str("Megatron index ", info_.path, ": document index changed since it was opened "
                             "(byte offset ", lay_.doc_index_at + (first + i) * 8, ")"));
    const int64_t span = std::min(s1, lay_.S - 1) - s0 + 1;
    if (span > 4 * count + 1024) {  // documents of many sequences: fetch just the first of each
      for (int64_t i = 0; i < count; ++i) {
        int64_t p = 0;
        if (seq[size_t(i)] < lay_.S) idx_.read(lay_.pointers_at + seq[size_t(i)] * 8, &p, 8);
        out[i] = seq[size_t(i)] >= lay_.S ? info_.num_tokens : p / info_.dtype.bytes;
      }
      return;
    }
    std::vector<int64_t> ptr(size_t(std::max<int64_t>(span, 0)));
    if (span > 0) idx_.read(lay_.pointers_at + s0 * 8, ptr.data(), size_t(span) * 8);
    for (int64_t i = 0; i < count; ++i)
      out[i] = seq[size_t(i)] >= lay_.S ? info_.num_tokens : ptr[size_t(seq[size_t(i)] - s0)] / info_.dtype.bytes;
  }

 private:
  ByteFile idx_;
  MegatronLayout lay_;
};

// Reads n values of T at `offset` in pieces and hands each piece to fn(first_index, values, count).
template <class T, class Fn>
void scan_array(const ByteFile& f, int64_t offset, int64_t n, Fn fn) {
  const int64_t chunk = 1 << 16;
  std::vector<T> buf(size_t(std::min(n, chunk)));
  for (int64_t i = 0; i < n; i += chunk) {
    const int64_t m = std::min(chunk, n - i);
    f.read(offset + i * int64_t(sizeof(T)), buf.data(), size_t(m) * sizeof(T));
    fn(i, buf.data(), m);
  }
}

class MegatronWriter : public TokenWriter {
 public:
  MegatronWriter(const std::string& prefix, const WriterPlan& plan)
      : prefix_(prefix), plan_(plan), code_(megatron_dtype_code(plan.dtype)), bin_(prefix + ".bin") {
    if (plan.loss_mask)
      throw InputError(str(prefix, ": Megatron datasets cannot hold a loss mask; write hdf5 instead"));
    if (!code_) throw InputError(str(prefix, ": Megatron has no dtype code for ", dtype_name(plan.dtype)));
    lengths_.reserve(size_t(plan.num_documents));
  }
  void append(const int32_t* tokens, const uint8_t*, int64_t n) override {
    bin_.write_ids(tokens, n, plan_.dtype);
    current_ += n;
  }
  void end_document() override {
    if (current_ > INT32_MAX)
      throw InputError(str(prefix_, ": a document of ", current_, " tokens exceeds Megatron's int32 sequence length"));
    lengths_.push_back(int32_t(current_));
    total_ += current_;
    current_ = 0;
  }
  void finish() override {
    LCT_CHECK(current_ == 0, "Megatron writer: the last document was not ended");
    LCT_CHECK(total_ == plan_.num_tokens && int64_t(lengths_.size()) == plan_.num_documents,
              "Megatron writer got ", total_, " tokens in ", lengths_.size(), " documents, planned ",
              plan_.num_tokens, " in ", plan_.num_documents);
    bin_.close();
    FileWriter idx(prefix_ + ".idx");
    const uint64_t version = 1, S = lengths_.size(), D = S + 1;
    const uint8_t code = uint8_t(code_);
    idx.write(kMegatronMagic, 9);
    idx.write(&version, 8);
    idx.write(&code, 1);
    idx.write(&S, 8);
    idx.write(&D, 8);
    idx.write(lengths_.data(), S * 4);
    std::vector<int64_t> v(S);
    int64_t at = 0;
    for (size_t i = 0; i < S; ++i) v[i] = at, at += int64_t(lengths_[i]) * plan_.dtype.bytes;
    idx.write(v.data(), S * 8);
    v.resize(D);
    for (size_t i = 0; i < D; ++i) v[i] = int64_t(i);
    idx.write(v.data(), D * 8);
    idx.close();
  }

 private:
  std::string prefix_;
  WriterPlan plan_;
  int code_;
  FileWriter bin_;
  std::vector<int32_t> lengths_;
  int64_t current_ = 0, total_ = 0;
};

}  // namespace

std::unique_ptr<TokenFile> open_megatron_dataset(const std::string& path) {
  const std::string prefix = megatron_prefix(path);
  const std::string idx_path = prefix + ".idx", bin_path = prefix + ".bin";
  ByteFile idx(idx_path);
  const std::string where = str("Megatron index ", idx_path);
  const int64_t size = idx.size();
  if (size < kMegatronHeaderBytes)
    throw InputError(str(where, ": truncated: the header needs ", kMegatronHeaderBytes, " bytes, the file has ",
                         size, " (byte offset ", size, ")"));
  uint8_t h[kMegatronHeaderBytes];
  idx.read(0, h, sizeof h);
  if (std::memcmp(h, kMegatronMagic, 9) != 0)
    throw InputError(str(where, ": wrong magic at byte offset 0; a Megatron .idx starts with \"MMIDIDX\\0\\0\""));
  const uint64_t version = load_le<uint64_t>(h + 9);
  if (version != 1) throw InputError(str(where, ": version ", version, " at byte offset 9; only version 1 is known"));
  TokenFileInfo info;
  info.format = TokenFormat::Megatron;
  info.path = idx_path;
  info.data_path = bin_path;
  info.version = 1;
  if (!megatron_dtype(h[17], &info.dtype))
    throw InputError(str(where, ": dtype code ", int(h[17]), " at byte offset 17 cannot hold token ids; "
                         "expected an integer code (1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 8 uint16)"));
  const uint64_t S = load_le<uint64_t>(h + 18), D = load_le<uint64_t>(h + 26);
  // Each sequence takes 12 bytes and each document entry 8: bound the counts before multiplying.
  const uint64_t room = uint64_t(size - kMegatronHeaderBytes);
  if (S > room / 12 || D > room / 8 || S * 12 + D * 8 > room)
    throw InputError(str(where, ": counts (", S, " sequences at byte offset 18, ", D, " document entries at byte "
                         "offset 26) need more than the file's ", size, " bytes (truncated or corrupt)"));
  MegatronLayout lay;
  lay.S = int64_t(S);
  lay.D = int64_t(D);
  lay.lengths_at = kMegatronHeaderBytes;
  lay.pointers_at = lay.lengths_at + 4 * lay.S;
  lay.doc_index_at = lay.pointers_at + 8 * lay.S;
  const int64_t end = lay.doc_index_at + 8 * lay.D;
  if (size != end && size != end + lay.S)
    throw InputError(str(where, ": counts (", S, " sequences, ", D, " document entries) give ", end,
                         " bytes (or ", end + lay.S, " with sequence modes) but the file has ", size,
                         "; first unexplained byte at offset ", std::min(size, end)));
  if (D < 1) throw InputError(str(where, ": document-index count 0 at byte offset 26; it is at least 1"));

  // Lengths and byte offsets: non-negative, back to back from 0.
  const int64_t itemsize = info.dtype.bytes;
  std::vector<int32_t> lengths;
  int64_t expect_ptr = 0;
  for (int64_t i = 0; i < lay.S; i += 1 << 16) {
    const int64_t m = std::min<int64_t>(1 << 16, lay.S - i);
    lengths.resize(size_t(m));
    idx.read(lay.lengths_at + 4 * i, lengths.data(), size_t(m) * 4);
    std::vector<int64_t> ptr(static_cast<size_t>(m));
    idx.read(lay.pointers_at + 8 * i, ptr.data(), size_t(m) * 8);
    for (int64_t j = 0; j < m; ++j) {
      if (lengths[size_t(j)] < 0)
        throw InputError(str(where, ": negative sequence length ", lengths[size_t(j)], " at byte offset ",
                             lay.lengths_at + 4 * (i + j)));
      if (ptr[size_t(j)] != expect_ptr)
        throw InputError(str(where, ": sequence ", i + j, " starts at .bin byte ", ptr[size_t(j)], " (byte offset ",
                             lay.pointers_at + 8 * (i + j), ") but the lengths before it put it at ", expect_ptr,
                             "; lctrain needs sequences stored back to back"));
      expect_ptr += int64_t(lengths[size_t(j)]) * itemsize;
    }
  }
  int64_t prev = -1;
  scan_array<int64_t>(idx, lay.doc_index_at, lay.D, [&](int64_t i, const int64_t* v, int64_t m) {
    for (int64_t j = 0; j < m; ++j) {
      const int64_t k = i + j, s = v[j];
      const bool ok = (k > 0 || s == 0) && (k < lay.D - 1 || s == lay.S) && s >= prev && s <= lay.S;
      if (!ok)
        throw InputError(str(where, ": document index entry ", k, " = ", s, " at byte offset ", lay.doc_index_at + 8 * k,
                             "; entries rise from 0 to the sequence count ", lay.S));
      prev = s;
    }
  });
  ByteFile bin(bin_path);
  if (bin.size() != expect_ptr)
    throw InputError(str("Megatron data ", bin_path, ": the index ", idx_path, " describes ", expect_ptr / itemsize,
                         " tokens of ", dtype_name(info.dtype), " = ", expect_ptr, " bytes, but the file has ",
                         bin.size(), bin.size() < expect_ptr ? " (truncated)" : " (extra bytes)",
                         "; first mismatch at byte offset ", std::min(expect_ptr, bin.size())));
  info.num_tokens = expect_ptr / itemsize;
  info.num_documents = lay.D - 1;
  info.tokens_offset = 0;
  return std::make_unique<MegatronDataset>(std::move(info), std::move(bin), std::move(idx), lay);
}

std::unique_ptr<TokenWriter> make_megatron_writer(const std::string& path, const WriterPlan& plan) {
  return std::make_unique<MegatronWriter>(megatron_prefix(path), plan);
}

}  // namespace lct
