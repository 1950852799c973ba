// Pre-tokenization: cutting text into the pieces BPE runs on, by the two regex patterns byte-level BPE
// tokenizers use. Each pattern is matched by explicit code that reproduces what the regex (run by
// Oniguruma inside HF tokenizers, leftmost alternative first, greedy with backtracking) selects:
//
//  kLlama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//           \s*[\r\n]+|\s+(?!\S)|\s+
//  kGpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// Every code point matches some alternative, so the matches tile the text: the pieces are the matches.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "data/unicode.h"

namespace lct {

enum class SplitPattern { kLlama3, kGpt2 };

// The pattern strings as they appear in tokenizer.json (after JSON unescaping).
extern const char* const kLlama3Pattern;
extern const char* const kGpt2Pattern;

// Appends the pieces of text (views into it) to *pieces. *units is scratch space.
void split_by_pattern(SplitPattern pattern, std::string_view text, std::vector<CodeUnit>* units,
                      std::vector<std::string_view>* pieces);

}  // namespace lct
