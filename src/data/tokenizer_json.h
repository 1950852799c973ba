// Reading an HF tokenizer.json into a plain description of a byte-level BPE tokenizer, rejecting
// (with InputError) every part this implementation does not reproduce exactly.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/tokenizer_pretok.h"

namespace lct {

struct AddedTokenSpec {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool normalized = false;  // matched after normalization (a second pass; there is no normalizer here)
};

// The pre_tokenizer: zero or more Split steps (behavior Isolated), then one ByteLevel step.
struct PreTokenizerSpec {
  std::vector<SplitPattern> splits;
  bool add_prefix_space = false;  // ByteLevel: put ' ' in front of each piece that lacks one
  bool use_regex = false;         // ByteLevel: split each piece by the GPT-2 pattern
};

struct BpeSpec {
  std::string path;
  std::vector<std::pair<std::string, int32_t>> vocab;          // model.vocab, byte-level strings
  std::vector<std::pair<std::string, std::string>> merges;     // model.merges, in rank order
  std::vector<AddedTokenSpec> added;
  PreTokenizerSpec pretok;
  bool ignore_merges = false;  // a word found whole in the vocab is one token, merges or not
  std::string unk_token;       // empty: none
  bool fuse_unk = false;
  bool has_template = false;   // post_processor TemplateProcessing present
  std::vector<int32_t> template_prefix, template_suffix;  // its special ids around $A
};

// Throws InputError naming the path, the key and what to change.
BpeSpec read_tokenizer_json(const std::string& path);

}  // namespace lct
