// Data preparation behind `lcdata`: writing tokenized documents, converting between formats, and
// summarising a file (counts, id range, checksum). Kept apart from the CLI so tests can call it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/token_file.h"
#include "data/token_writer.h"

namespace lct {

struct Document {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> loss_mask;  // empty, or one 0/1 per token
};

// The output format for `out`: `format` when not empty, else by extension (.h5/.hdf5 -> hdf5,
// .idx -> megatron, .bin -> llmc), else hdf5.
TokenFormat output_format(const std::string& out, const std::string& format);

// Writes documents. HDF5 stores them as they are, with eod_token as an attribute; llm.c and Megatron
// have no attributes, so eod_token (when >= 0) is written after every document, giving the same
// token stream. `attrs` supplies vocab_size, tokenizer, eod_token (and dtype, or 0 bytes = by vocab).
void write_documents(const std::string& out, TokenFormat format, const std::vector<Document>& docs, WriterPlan attrs);

struct ConvertOptions {
  bool drop_loss_mask = false;  // a loss mask cannot go to llm.c or Megatron unless dropped on purpose
};
// Rewrites `in` (any format) as `out`, streaming in pieces. The token stream (documents joined by
// the source's eod_token) is preserved, so `lcdata info` prints the same stream checksum.
void convert_token_file(const std::string& in, const std::string& out, TokenFormat out_format, const ConvertOptions& opt);

struct TokenFileSummary {
  TokenFileInfo info;
  int64_t stream_tokens = 0;  // tokens with end-of-document tokens inserted (when eod_token >= 0)
  int64_t min_id = 0, max_id = -1;
  int64_t masked_tokens = 0;  // loss-mask zeros
  std::string stream_sha256;  // SHA-256 of the stream, each id as a little-endian uint32
  std::string file_sha256;    // SHA-256 of the file's bytes (Megatron: .idx then .bin)
};
// Reads the whole file in pieces; ids at or above the file's declared vocab_size are an InputError.
TokenFileSummary summarize_token_file(const std::string& path, const std::string& format = "auto");
std::string format_summary(const TokenFileSummary& s);  // "key: value" lines

}  // namespace lct
