// GPT-2's byte-level alphabet: each byte is written as one printable code point, so a byte-level BPE
// vocabulary is a set of ordinary strings. Printable Latin-1 bytes (!..~, ¡..¬, ®..ÿ) stand for
// themselves; the other 68 bytes, in order, become U+0100, U+0101, ... (space is 'Ġ' U+0120).
#pragma once

#include <cstdint>

namespace lct {

uint32_t byte_to_unicode(uint8_t b);
// The byte a code point stands for, or -1 if it is not in the alphabet.
int unicode_to_byte(uint32_t cp);

}  // namespace lct
