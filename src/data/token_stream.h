// The training token stream: the files' documents one after another, in list order. When an
// end-of-document token is set, it follows every document (so a file of D documents adds D tokens).
// Random access to any range reads only the bytes it needs: no index is held in memory beyond one
// offset per file; document boundaries are found by binary search in the files' own offset arrays.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "data/token_file.h"

namespace lct {

class TokenStream {
 public:
  // vocab_size > 0: every id read must be below it (InputError naming file and byte offset).
  TokenStream(std::vector<std::unique_ptr<TokenFile>> files, int32_t eod_token, int64_t vocab_size);

  int64_t size() const { return starts_.back(); }
  int32_t eod_token() const { return eod_; }
  bool has_loss_mask() const { return has_mask_; }
  size_t num_files() const { return files_.size(); }
  const TokenFile& file(size_t i) const { return *files_[i]; }
  int64_t file_start(size_t i) const { return starts_[i]; }  // stream position of the file's first token

  // Tokens [begin, begin + count) into `tokens`, and their loss mask into `mask` when not null
  // (inserted end-of-document tokens count as targets). Thread-safe.
  void read(int64_t begin, int64_t count, int32_t* tokens, uint8_t* mask) const;

 private:
  int64_t eods_before(const TokenFile& f, int64_t v) const;
  void read_file(const TokenFile& f, int64_t v0, int64_t v1, int32_t* tokens, uint8_t* mask) const;

  std::vector<std::unique_ptr<TokenFile>> files_;
  std::vector<int64_t> starts_;  // files_.size() + 1 entries
  int32_t eod_;
  int64_t vocab_size_;
  bool has_mask_ = false;
};

}  // namespace lct
