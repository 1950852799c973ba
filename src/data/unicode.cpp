#include "data/unicode.h"

#include <algorithm>

namespace lct {
namespace {

struct CpRange {
  uint32_t lo, hi;  // inclusive
  CpClass cls;
};

#include "data/unicode_tables.inc"

// ASCII is most of most text: a direct table instead of a binary search.
struct AsciiClasses {
  CpClass cls[128];
  constexpr AsciiClasses() : cls() {
    for (int c = 0; c < 128; ++c) cls[c] = CpClass::kOther;
    for (const CpRange& r : kCpRanges) {
      if (r.lo >= 128) break;
      for (uint32_t c = r.lo; c <= r.hi && c < 128; ++c) cls[c] = r.cls;
    }
  }
};
constexpr AsciiClasses kAscii;

bool is_cont(unsigned char b) { return (b & 0xC0) == 0x80; }

// For a lead byte: the sequence length and the allowed range of the second byte (which rules out
// overlong forms, surrogates and code points above U+10FFFF). len 0: not a lead byte.
struct Lead {
  int len;
  unsigned char lo2, hi2;
};
Lead lead_info(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b >= 0xE1 && b <= 0xEC) return {3, 0x80, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b == 0xEE || b == 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes from s[i] form a valid prefix of a sequence (at least 1), and whether it is complete.
int valid_prefix(std::string_view s, size_t i, bool* complete) {
  Lead L = lead_info(static_cast<unsigned char>(s[i]));
  *complete = false;
  if (L.len == 0) return 1;
  if (L.len == 1) {
    *complete = true;
    return 1;
  }
  int k = 1;
  if (i + 1 >= s.size()) return k;
  unsigned char b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < L.lo2 || b1 > L.hi2) return k;
  k = 2;
  while (k < L.len) {
    if (i + k >= s.size() || !is_cont(static_cast<unsigned char>(s[i + k]))) return k;
    ++k;
  }
  *complete = true;
  return k;
}

}  // namespace

CpClass cp_class(uint32_t cp) {
  if (cp < 128) return kAscii.cls[cp];
  if (cp == kInvalidCp) return CpClass::kOther;
  // The first range whose hi >= cp; cp is in it if lo <= cp.
  const CpRange* end = kCpRanges + sizeof(kCpRanges) / sizeof(kCpRanges[0]);
  const CpRange* r = std::lower_bound(kCpRanges, end, cp,
                                      [](const CpRange& a, uint32_t c) { return a.hi < c; });
  if (r != end && r->lo <= cp) return r->cls;
  return CpClass::kOther;
}

int utf8_sequence(std::string_view s, size_t i, uint32_t* cp) {
  bool complete = false;
  int k = valid_prefix(s, i, &complete);
  if (!complete) return 0;
  unsigned char b0 = static_cast<unsigned char>(s[i]);
  if (k == 1) {
    *cp = b0;
    return 1;
  }
  uint32_t c = b0 & (0x7F >> k);
  for (int j = 1; j < k; ++j) c = (c << 6) | (static_cast<unsigned char>(s[i + j]) & 0x3F);
  *cp = c;
  return k;
}

void utf8_decode(std::string_view s, std::vector<CodeUnit>* out) {
  out->clear();
  out->reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out->push_back({b, uint32_t(i), kAscii.cls[b]});
      ++i;
      continue;
    }
    uint32_t cp = 0;
    int len = utf8_sequence(s, i, &cp);
    if (len == 0) {
      out->push_back({kInvalidCp, uint32_t(i), CpClass::kOther});
      ++i;
    } else {
      out->push_back({cp, uint32_t(i), cp_class(cp)});
      i += len;
    }
  }
}

void utf8_append(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(char(cp));
  } else if (cp < 0x800) {
    out->push_back(char(0xC0 | (cp >> 6)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(char(0xE0 | (cp >> 12)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(char(0xF0 | (cp >> 18)));
    out->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(char(0x80 | (cp & 0x3F)));
  }
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    bool complete = false;
    int k = valid_prefix(bytes, i, &complete);
    if (complete) {
      out.append(bytes.data() + i, size_t(k));
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD
    }
    i += size_t(k);
  }
  return out;
}

}  // namespace lct
