#include "data/tokenizer_pretok.h"

namespace lct {

const char* const kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

namespace {

// A view of the decoded text with the small predicates the patterns are written in.
struct Units {
  const std::vector<CodeUnit>& u;
  size_t n() const { return u.size(); }
  uint32_t cp(size_t i) const { return u[i].cp; }
  bool letter(size_t i) const { return u[i].cls == CpClass::kLetter; }
  bool number(size_t i) const { return u[i].cls == CpClass::kNumber; }
  bool space(size_t i) const { return u[i].cls == CpClass::kSpace; }
  bool other(size_t i) const { return u[i].cls == CpClass::kOther; }  // [^\s\p{L}\p{N}]
  bool crlf(size_t i) const { return u[i].cp == '\r' || u[i].cp == '\n'; }
  // End of the run of units from i on that satisfy pred.
  template <class Pred>
  size_t run(size_t i, Pred pred) const {
    while (i < n() && pred(i)) ++i;
    return i;
  }
};

// Case-insensitive ASCII letter as (?i:...) sees it. Oniguruma's case folding also folds U+017F
// (LATIN SMALL LETTER LONG S) to 's'; no other code point folds onto the contraction letters
// (checked against HF tokenizers over all of Unicode).
uint32_t fold(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + ('a' - 'A');
  if (c == 0x17F) return 's';
  return c;
}

// 's 't 're 've 'm 'll 'd at i: the match end, or 0.
size_t match_contraction(const Units& t, size_t i, bool ignore_case) {
  if (t.cp(i) != '\'' || i + 1 >= t.n()) return 0;
  auto at = [&](size_t k) { return ignore_case ? fold(t.cp(k)) : t.cp(k); };
  uint32_t c1 = at(i + 1);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
  if (i + 2 >= t.n()) return 0;
  uint32_t c2 = at(i + 2);
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return i + 3;
  return 0;
}

// \s+(?!\S) then \s+, at a space: the longest run that is followed by a space or the end, else the run.
size_t match_trailing_space(const Units& t, size_t i) {
  size_t q = t.run(i, [&](size_t k) { return t.space(k); });
  if (q == t.n()) return q;
  if (q - 1 > i) return q - 1;  // leave the last space to join the word after it
  return q;
}

size_t next_llama3(const Units& t, size_t i) {
  if (size_t j = match_contraction(t, i, /*ignore_case=*/true)) return j;
  auto letters = [&](size_t k) { return t.letter(k); };
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (!t.crlf(i) && !t.letter(i) && !t.number(i) && i + 1 < t.n() && t.letter(i + 1))
    return t.run(i + 1, letters);
  if (t.letter(i)) return t.run(i, letters);
  // \p{N}{1,3}
  if (t.number(i)) {
    size_t j = i + 1;
    while (j < t.n() && j < i + 3 && t.number(j)) ++j;
    return j;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  size_t a = (t.cp(i) == ' ' && i + 1 < t.n() && t.other(i + 1)) ? i + 1 : i;
  if (t.other(a)) {
    size_t j = t.run(a, [&](size_t k) { return t.other(k); });
    return t.run(j, [&](size_t k) { return t.crlf(k); });
  }
  // Here i is a space. \s*[\r\n]+: the whitespace run up to and including its last CR or LF.
  size_t q = t.run(i, [&](size_t k) { return t.space(k); });
  for (size_t k = q; k > i; --k) {
    if (t.crlf(k - 1)) return k;
  }
  return match_trailing_space(t, i);
}

size_t next_gpt2(const Units& t, size_t i) {
  if (size_t j = match_contraction(t, i, /*ignore_case=*/false)) return j;
  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional space, then a run of one class.
  size_t a = (t.cp(i) == ' ' && i + 1 < t.n() && !t.space(i + 1)) ? i + 1 : i;
  if (!t.space(a)) {
    CpClass c = t.u[a].cls;
    return t.run(a, [&](size_t k) { return t.u[k].cls == c; });
  }
  return match_trailing_space(t, i);
}

}  // namespace

void split_by_pattern(SplitPattern pattern, std::string_view text, std::vector<CodeUnit>* units,
                      std::vector<std::string_view>* pieces) {
  utf8_decode(text, units);
  Units t{*units};
  size_t i = 0;
  while (i < t.n()) {
    size_t j = pattern == SplitPattern::kLlama3 ? next_llama3(t, i) : next_gpt2(t, i);
    size_t b0 = t.u[i].offset, b1 = j < t.n() ? t.u[j].offset : text.size();
    pieces->push_back(text.substr(b0, b1 - b0));
    i = j;
  }
}

}  // namespace lct
