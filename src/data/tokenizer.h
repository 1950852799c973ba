// Text <-> token ids. Two kinds:
//  - "bytes": ByteTokenizer, ids 0..255 are the bytes, 256 <|begin_of_text|>, 257 <|end_of_text|>.
//  - a path to a Hugging Face tokenizer.json of the byte-level BPE kind Llama-3 and GPT-2 ship:
//    BpeTokenizer (tokenizer_bpe.h), whose encode() gives the ids HF's
//    `Tokenizer.encode(text, add_special_tokens=False)` gives. docs/tokenizer.md lists what is supported.
// encode/decode are const and keep no shared state: one tokenizer may serve several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lct {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // parse_special: special tokens written in the text (e.g. "<|eot_id|>") become their ids; when false
  // they are tokenized as plain text (HF's encode_special_tokens=True).
  virtual std::vector<int32_t> encode(const std::string& utf8_text, bool parse_special = true) const = 0;
  // encode() plus what the tokenizer adds around a sequence: for Llama-3 files the post_processor
  // template's <|begin_of_text|> in front (HF's add_special_tokens=True); ByteTokenizer puts bos_id()
  // in front. A tokenizer.json without a post_processor adds nothing, as HF does.
  virtual std::vector<int32_t> encode_with_bos(const std::string& utf8_text,
                                               bool parse_special = true) const = 0;
  // Special tokens come out as their text. Byte sequences that are not valid UTF-8 become U+FFFD for
  // BpeTokenizer (as HF does); ByteTokenizer returns the raw bytes. An id out of range throws InputError.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;  // max id + 1, added/special tokens included
  // Whether decode() knows this id (a tokenizer.json may leave id numbers unused).
  virtual bool has_id(int32_t id) const { return id >= 0 && id < vocab_size(); }
  virtual int32_t bos_id() const = 0;      // -1 if none
  virtual int32_t eos_id() const = 0;      // end-of-document / end-of-text token, -1 if none
  virtual std::string name() const = 0;    // "bytes" or the tokenizer.json path
  // The id of a token written as the vocabulary writes it (BPE: "Ġthe"; special tokens as themselves);
  // -1 if absent.
  virtual int32_t token_id(const std::string& token) const = 0;
};

// decode() for generated ids: a model's vocabulary may be larger than its tokenizer's (padded rows,
// HF's vocab_size above the tokenizer's, unused id numbers), so an id the tokenizer lacks becomes
// U+FFFD instead of an error after the generation is done; `unknown` (if given) counts them.
std::string decode_generated(const Tokenizer& tok, const std::vector<int32_t>& ids, int64_t* unknown = nullptr);

// "bytes" -> ByteTokenizer; anything else is the path of a tokenizer.json -> BpeTokenizer.
// Throws InputError naming the path and what is wrong (missing file, malformed JSON, unsupported parts).
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec);

}  // namespace lct
