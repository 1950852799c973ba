// Writing tokenized documents in any of the formats we read. A writer is told the totals up front
// (HDF5 datasets are contiguous, so they are sized at creation; llm.c puts the count in its header),
// then receives documents piece by piece, so a converter never holds a whole file in memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "data/token_file.h"

namespace lct {

struct WriterPlan {
  int64_t num_tokens = 0;     // exact totals; finish() checks them
  int64_t num_documents = 0;
  TokenDType dtype{2, false}; // on-disk id type (llm.c: uint16 -> version 1, uint32 -> version 7)
  int64_t vocab_size = 0;     // HDF5 attribute; 0 = unknown
  std::string tokenizer;      // HDF5 attribute
  int32_t eod_token = -1;     // HDF5 attribute; -1 = none
  bool loss_mask = false;     // HDF5 only: write a per-token loss_mask dataset
};

class TokenWriter {
 public:
  virtual ~TokenWriter() = default;
  // Appends n tokens (and their mask entries when the plan has a loss mask) to the open document.
  virtual void append(const int32_t* tokens, const uint8_t* mask, int64_t n) = 0;
  virtual void end_document() = 0;
  // Checks the totals against the plan and closes the file(s). Without finish() the output is incomplete.
  virtual void finish() = 0;
};

// The smallest on-disk type for a vocabulary (uint16 up to 65536 ids, else uint32; unknown: uint32).
TokenDType dtype_for_vocab(int64_t vocab_size);

// The on-disk type a format can store for ids of type t: llm.c has uint16 and uint32 only; Megatron
// has no uint32 code and uses int32 for large vocabularies, as its preprocessing does.
TokenDType dtype_for_format(TokenFormat format, TokenDType t);

// `path`: the output file; for Megatron a prefix (a trailing .idx or .bin is stripped).
std::unique_ptr<TokenWriter> make_token_writer(const std::string& path, TokenFormat format, const WriterPlan& plan);

}  // namespace lct
