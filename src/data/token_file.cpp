#include "data/token_file.h"

#include <algorithm>
#include <vector>

#include "core/error.h"

namespace lct {

const char* format_name(TokenFormat f) {
  switch (f) {
    case TokenFormat::Llmc: return "llmc";
    case TokenFormat::Megatron: return "megatron";
    case TokenFormat::Hdf5: return "hdf5";
  }
  return "?";
}

TokenFormat parse_format(const std::string& name, const std::string& where) {
  if (name == "llmc") return TokenFormat::Llmc;
  if (name == "megatron") return TokenFormat::Megatron;
  if (name == "hdf5") return TokenFormat::Hdf5;
  throw InputError(str(where, ": unknown data format '", name, "'; choose llmc, megatron or hdf5"));
}

std::string dtype_name(TokenDType t) { return str(t.is_signed ? "int" : "uint", t.bytes * 8); }

template <class T>
static int64_t decode_as(const uint8_t* src, int64_t n, int64_t limit, int32_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = int64_t(load_le<T>(src + i * int64_t(sizeof(T))));
    if (v < 0 || v >= limit) return i;
    out[i] = int32_t(v);
  }
  return -1;
}

int64_t decode_token_ids(const uint8_t* src, TokenDType t, int64_t n, int64_t limit, int32_t* out) {
  const int64_t lim = limit > 0 ? std::min<int64_t>(limit, int64_t(INT32_MAX) + 1) : int64_t(INT32_MAX) + 1;
  switch (t.bytes) {
    case 1: return t.is_signed ? decode_as<int8_t>(src, n, lim, out) : decode_as<uint8_t>(src, n, lim, out);
    case 2: return t.is_signed ? decode_as<int16_t>(src, n, lim, out) : decode_as<uint16_t>(src, n, lim, out);
    case 4: return t.is_signed ? decode_as<int32_t>(src, n, lim, out) : decode_as<uint32_t>(src, n, lim, out);
    case 8:
      if (t.is_signed) return decode_as<int64_t>(src, n, lim, out);
      // uint64 ids above int64 range are bad anyway: decode as int64 and let the sign catch them.
      return decode_as<int64_t>(src, n, lim, out);
  }
  LCT_CHECK(false, "token dtype of ", t.bytes, " bytes");
  return 0;
}

void TokenFile::check_range(int64_t begin, int64_t count, int64_t end, const char* what) const {
  LCT_CHECK(begin >= 0 && count >= 0 && begin + count <= end, what, " range [", begin, ", ", begin + count,
            ") outside [0, ", end, ") of ", info_.path);
}

void TokenFile::read_tokens(int64_t begin, int64_t count, int32_t* out, int64_t limit) const {
  check_range(begin, count, info_.num_tokens, "token");
  const int64_t chunk = 1 << 16;
  const int b = info_.dtype.bytes;
  std::vector<uint8_t> buf(size_t(std::min(count, chunk) * b));
  for (int64_t done = 0; done < count; done += chunk) {
    const int64_t n = std::min(chunk, count - done);
    const int64_t offset = info_.tokens_offset + (begin + done) * b;
    data_.read(offset, buf.data(), size_t(n * b));
    const int64_t bad = decode_token_ids(buf.data(), info_.dtype, n, limit, out + done);
    if (bad >= 0) {
      int64_t v = 0;
      std::memcpy(&v, buf.data() + bad * b, size_t(b));  // little-endian: low bytes first
      if (info_.dtype.is_signed && b < 8 && ((v >> (b * 8 - 1)) & 1)) v -= int64_t(1) << (b * 8);
      const int64_t lim = limit > 0 ? limit : int64_t(INT32_MAX) + 1;
      throw InputError(str("data file ", info_.data_path, ": token id ", v, " at byte offset ",
                           offset + bad * b, " (token ", begin + done + bad, ") is ",
                           v < 0 ? "negative" : str(">= the vocabulary size ", lim),
                           v < 0 ? "" : "; the data was tokenized for a larger vocabulary than "
                                        "[model] vocab_size, or the file is corrupt"));
    }
  }
}

void TokenFile::read_loss_mask(int64_t begin, int64_t count, uint8_t* out) const {
  check_range(begin, count, info_.num_tokens, "loss mask");
  std::fill(out, out + count, uint8_t(1));
}

}  // namespace lct
