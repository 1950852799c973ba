#include "data/token_stream.h"

#include <algorithm>

#include "core/error.h"

namespace lct {

TokenStream::TokenStream(std::vector<std::unique_ptr<TokenFile>> files, int32_t eod_override, int64_t vocab_size)
    : files_(std::move(files)), vocab_size_(vocab_size) {
  starts_.reserve(files_.size() + 1);
  starts_.push_back(0);
  for (const auto& f : files_) {
    const int32_t eod = eod_override >= 0 ? eod_override : f->info().eod_token;
    eods_.push_back(eod);
    if (eod_ < 0) eod_ = eod;
    const int64_t n = f->info().num_tokens + (eod >= 0 ? f->info().num_documents : 0);
    starts_.push_back(starts_.back() + n);
    has_mask_ = has_mask_ || f->info().has_loss_mask;
  }
}

// Stream position v within file f (0 <= v <= file length) has this many end-of-document tokens
// before it. Document k's end token sits at e_k = start(k + 1) + k, strictly rising in k.
int64_t TokenStream::eods_before(const TokenFile& f, int64_t v) const {
  int64_t lo = 0, hi = f.info().num_documents;  // answer in [lo, hi]
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    int64_t next_start = 0;
    f.read_document_starts(mid + 1, 1, &next_start);
    if (next_start + mid >= v) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

void TokenStream::read_file(const TokenFile& f, int32_t eod, int64_t v0, int64_t v1, int32_t* tokens,
                            uint8_t* mask) const {
  if (eod < 0) {
    f.read_tokens(v0, v1 - v0, tokens, vocab_size_);
    if (mask) f.read_loss_mask(v0, v1 - v0, mask);
    return;
  }
  const int64_t k0 = eods_before(f, v0), k1 = eods_before(f, v1);
  const int64_t r0 = v0 - k0, r1 = v1 - k1;  // the file's own tokens in the range
  std::vector<int32_t> real(static_cast<size_t>(r1 - r0));
  std::vector<uint8_t> real_mask(mask ? size_t(r1 - r0) : 0);
  f.read_tokens(r0, r1 - r0, real.data(), vocab_size_);
  if (mask) f.read_loss_mask(r0, r1 - r0, real_mask.data());
  std::vector<int64_t> next_starts(static_cast<size_t>(k1 - k0));
  f.read_document_starts(k0 + 1, k1 - k0, next_starts.data());
  int64_t v = v0, r = 0;
  auto copy_real = [&](int64_t n) {
    LCT_CHECK(n >= 0 && r + n <= r1 - r0, "document offsets of ", f.path(), " are inconsistent");
    std::copy_n(real.data() + r, n, tokens + (v - v0));
    if (mask) std::copy_n(real_mask.data() + r, n, mask + (v - v0));
    r += n;
    v += n;
  };
  for (int64_t k = k0; k < k1; ++k) {
    copy_real(next_starts[size_t(k - k0)] + k - v);  // up to document k's end token
    tokens[v - v0] = eod;
    if (mask) mask[v - v0] = 1;
    ++v;
  }
  copy_real(v1 - v);
}

void TokenStream::read(int64_t begin, int64_t count, int32_t* tokens, uint8_t* mask) const {
  LCT_CHECK(begin >= 0 && count >= 0 && begin + count <= size(), "stream range [", begin, ", ", begin + count,
            ") outside [0, ", size(), ")");
  // The first file whose range reaches past `begin`.
  size_t i = size_t(std::upper_bound(starts_.begin(), starts_.end(), begin) - starts_.begin()) - 1;
  int64_t pos = begin;
  const int64_t end = begin + count;
  while (pos < end) {
    LCT_CHECK(i < files_.size(), "stream position ", pos, " past the last file");
    const int64_t file_end = std::min(end, starts_[i + 1]);
    if (file_end > pos)
      read_file(*files_[i], eods_[i], pos - starts_[i], file_end - starts_[i], tokens + (pos - begin),
                mask ? mask + (pos - begin) : nullptr);
    pos = file_end;
    ++i;
  }
}

}  // namespace lct
