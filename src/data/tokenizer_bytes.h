// The byte tokenizer: one id per byte, plus two special tokens. Needs no file; used for tests and for
// training tiny models on raw bytes.
#pragma once

#include "data/tokenizer.h"

namespace lct {

class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kBos = 256;  // <|begin_of_text|>
  static constexpr int32_t kEos = 257;  // <|end_of_text|>
  static constexpr int64_t kVocab = 258;

  std::vector<int32_t> encode(const std::string& utf8_text, bool parse_special = true) const override;
  std::vector<int32_t> encode_with_bos(const std::string& utf8_text,
                                       bool parse_special = true) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return kVocab; }
  int32_t bos_id() const override { return kBos; }
  int32_t eos_id() const override { return kEos; }
  std::string name() const override { return "bytes"; }
  // A one-byte string -> that byte; the two special tokens -> 256 / 257; else -1.
  int32_t token_id(const std::string& token) const override;
};

}  // namespace lct
