#include "data/tokenizer_bytelevel.h"

namespace lct {
namespace {

constexpr bool printable(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

struct ByteMap {
  uint32_t to_cp[256];
  constexpr ByteMap() : to_cp() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) to_cp[b] = printable(b) ? uint32_t(b) : next++;
  }
};
constexpr ByteMap kMap;

}  // namespace

uint32_t byte_to_unicode(uint8_t b) { return kMap.to_cp[b]; }

int unicode_to_byte(uint32_t cp) {
  if (cp < 256) return printable(int(cp)) ? int(cp) : -1;
  if (cp >= 256 + 68) return -1;
  for (int b = 0; b < 256; ++b) {  // the 68 remapped bytes
    if (kMap.to_cp[b] == cp) return b;
  }
  return -1;
}

}  // namespace lct
