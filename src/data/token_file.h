// One tokenized file of a known format, validated when opened: the common view the sampler reads
// through. Every format stores its tokens as one contiguous little-endian integer array, so reading
// is one pread per range; formats differ only in how documents and loss masks are described.
// Byte layouts: docs/data.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "data/byte_file.h"

namespace lct {

enum class TokenFormat { Llmc, Megatron, Hdf5 };
const char* format_name(TokenFormat f);  // "llmc", "megatron", "hdf5"
// Parses a format name; InputError listing the choices otherwise ("auto" is not a TokenFormat).
TokenFormat parse_format(const std::string& name, const std::string& where);

// How token ids are stored on disk (little-endian integers).
struct TokenDType {
  int bytes = 4;
  bool is_signed = false;
};
std::string dtype_name(TokenDType t);  // "uint16", "int32", ...

struct TokenFileInfo {
  TokenFormat format = TokenFormat::Llmc;
  std::string path;          // the file as named (for Megatron: the prefix.idx)
  std::string data_path;     // the file holding the tokens (Megatron: prefix.bin)
  TokenDType dtype;
  int64_t tokens_offset = 0; // byte offset of token 0 in data_path
  int64_t num_tokens = 0;
  int64_t num_documents = 0;
  int64_t vocab_size = 0;    // declared by the file (HDF5 attribute); 0 = unknown
  int32_t eod_token = -1;    // declared by the file (HDF5 attribute); -1 = none
  std::string tokenizer;     // declared by the file (HDF5 attribute); empty = unknown
  bool has_loss_mask = false;
  int64_t version = 0;       // llm.c header version, Megatron index version, HDF5 format_version
};

class TokenFile {
 public:
  virtual ~TokenFile() = default;
  const TokenFileInfo& info() const { return info_; }
  const std::string& path() const { return info_.path; }

  // Token ids [begin, begin + count) as int32 (thread-safe). An id < 0 or >= limit (limit 0: no
  // vocabulary limit, only the int32 range) is an InputError naming the file and its byte offset.
  void read_tokens(int64_t begin, int64_t count, int32_t* out, int64_t limit) const;
  // Loss-mask entries [begin, begin + count), each 0 or 1; all 1 when the file has no mask.
  virtual void read_loss_mask(int64_t begin, int64_t count, uint8_t* out) const;
  // Token index where each of documents [first, first + count) starts. Index num_documents is valid
  // and gives num_tokens, so starts of k and k + 1 bound document k.
  virtual void read_document_starts(int64_t first, int64_t count, int64_t* out) const = 0;

 protected:
  TokenFile(TokenFileInfo info, ByteFile data) : info_(std::move(info)), data_(std::move(data)) {}
  void check_range(int64_t begin, int64_t count, int64_t end, const char* what) const;

  TokenFileInfo info_;
  ByteFile data_;
};

// Decodes n little-endian ids of type t into int32, checking 0 <= id < limit (limit 0: int32 range).
// Returns the index of the first bad id, or -1 when all are good.
int64_t decode_token_ids(const uint8_t* src, TokenDType t, int64_t n, int64_t limit, int32_t* out);

}  // namespace lct
