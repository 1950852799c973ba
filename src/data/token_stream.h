// The training token stream: the files' documents one after another, in list order. A file with an
// end-of-document token (the override, else its own eod_token attribute) has that token after every
// document, so a file of D documents adds D tokens; files without one (llm.c and Megatron data
// usually carry their separators in the tokens) are taken as they are.
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
  // eod_override >= 0: the end-of-document token for every file; -1: each file's own attribute.
  // vocab_size > 0: every id read must be below it (InputError naming file and byte offset).
  TokenStream(std::vector<std::unique_ptr<TokenFile>> files, int32_t eod_override, int64_t vocab_size);

  int64_t size() const { return starts_.back(); }
  // The override, else the first file's eod attribute that is set, else -1.
  int32_t eod_token() const { return eod_; }
  int32_t file_eod(size_t i) const { return eods_[i]; }
  bool has_loss_mask() const { return has_mask_; }
  size_t num_files() const { return files_.size(); }
  const TokenFile& file(size_t i) const { return *files_[i]; }
  int64_t file_start(size_t i) const { return starts_[i]; }  // stream position of the file's first token

  // Tokens [begin, begin + count) into `tokens`, and their loss mask into `mask` when not null
  // (inserted end-of-document tokens count as targets). Thread-safe.
  void read(int64_t begin, int64_t count, int32_t* tokens, uint8_t* mask) const;

 private:
  int64_t eods_before(const TokenFile& f, int64_t v) const;
  void read_file(const TokenFile& f, int32_t eod, int64_t v0, int64_t v1, int32_t* tokens, uint8_t* mask) const;

  std::vector<std::unique_ptr<TokenFile>> files_;
  std::vector<int64_t> starts_;  // files_.size() + 1 entries
  std::vector<int32_t> eods_;    // per file, -1 = none
  int32_t eod_ = -1;
  int64_t vocab_size_;
  bool has_mask_ = false;
};

}  // namespace lct
