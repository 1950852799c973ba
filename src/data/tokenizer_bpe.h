// Byte-level BPE from a Hugging Face tokenizer.json (Llama-3 and GPT-2 style). encode() reproduces
// HF tokenizers' encode(text, add_special_tokens=False) id for id:
//   1. added tokens are cut out of the raw text (tokenizer_added.h);
//   2. each remaining span is pre-tokenized (tokenizer_pretok.h) into pieces;
//   3. each piece's bytes are merged by BPE, lowest merge rank first, leftmost first among equal ranks.
// docs/tokenizer.md says what is supported and how it was checked against HF.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/tokenizer.h"
#include "data/tokenizer_added.h"
#include "data/tokenizer_json.h"

namespace lct {

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(const std::string& path);  // throws InputError
  explicit BpeTokenizer(const BpeSpec& spec);
  BpeTokenizer(const BpeTokenizer&) = delete;
  BpeTokenizer& operator=(const BpeTokenizer&) = delete;

  std::vector<int32_t> encode(const std::string& utf8_text, bool parse_special = true) const override;
  std::vector<int32_t> encode_with_bos(const std::string& utf8_text, bool parse_special = true) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return int64_t(tokens_.size()); }
  bool has_id(int32_t id) const override { return id >= 0 && id < vocab_size() && tokens_[size_t(id)].present; }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  std::string name() const override { return path_; }
  int32_t token_id(const std::string& token) const override;

  // The bytes a token stands for (an added token: its text). Concatenating these for the ids of
  // encode(x) gives back x byte for byte, even when x is not valid UTF-8. Throws InputError if unknown.
  std::string token_bytes(int32_t id) const;

 private:
  struct TokenInfo {
    std::string text;   // as in the file: "Ġthe", or an added token's content
    std::string bytes;  // what it decodes to
    bool byte_level = false;  // every character is in the byte-level alphabet
    bool added = false;
    bool present = false;  // some id numbers may be unused
  };
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  struct Workspace;  // per-call scratch buffers and word cache

  void encode_span(std::string_view text, Workspace* ws, std::vector<int32_t>* out) const;
  // cacheable: piece points into the caller's text (so it may key the per-call cache).
  void encode_piece(std::string_view piece, Workspace* ws, std::vector<int32_t>* out, bool cacheable) const;
  void bpe(std::string_view piece, Workspace* ws, std::vector<int32_t>* out) const;
  const TokenInfo& info(int32_t id, size_t pos) const;

  std::string path_;
  std::vector<TokenInfo> tokens_;                       // by id
  std::unordered_map<std::string, int32_t> text_to_id_;  // file spelling -> id (added tokens win)
  // raw bytes -> id, for ignore_merges; keys point into tokens_, so the class is neither copied nor moved
  std::unordered_map<std::string_view, int32_t> bytes_to_id_;
  std::unordered_map<uint64_t, Merge> merges_;           // (left id << 32 | right id) -> merge
  int32_t byte_id_[256];                                 // the one-byte tokens; -1 missing
  AddedTokenMatcher plain_added_, normalized_added_;     // HF's two passes
  PreTokenizerSpec pretok_;
  bool ignore_merges_ = false;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool has_template_ = false;
  std::vector<int32_t> template_prefix_, template_suffix_;
  int32_t bos_id_ = -1, eos_id_ = -1;
};

}  // namespace lct
