#include "data/tokenizer_bytes.h"

#include <cstring>

#include "core/error.h"

namespace lct {
namespace {

constexpr const char* kBosText = "<|begin_of_text|>";
constexpr const char* kEosText = "<|end_of_text|>";

}  // namespace

std::vector<int32_t> ByteTokenizer::encode(const std::string& text, bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  const size_t bos_len = std::strlen(kBosText), eos_len = std::strlen(kEosText);
  for (size_t i = 0; i < text.size();) {
    if (parse_special && text[i] == '<') {
      if (text.compare(i, bos_len, kBosText) == 0) {
        ids.push_back(kBos);
        i += bos_len;
        continue;
      }
      if (text.compare(i, eos_len, kEosText) == 0) {
        ids.push_back(kEos);
        i += eos_len;
        continue;
      }
    }
    ids.push_back(static_cast<unsigned char>(text[i]));
    ++i;
  }
  return ids;
}

std::vector<int32_t> ByteTokenizer::encode_with_bos(const std::string& text, bool parse_special) const {
  std::vector<int32_t> ids{kBos};
  std::vector<int32_t> body = encode(text, parse_special);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t id = ids[i];
    if (id >= 0 && id < 256) {
      out.push_back(static_cast<char>(id));
    } else if (id == kBos) {
      out.append(kBosText);
    } else if (id == kEos) {
      out.append(kEosText);
    } else {
      throw InputError(str("bytes tokenizer: token id ", id, " at position ", i,
                           " is out of range [0, ", kVocab, "); the ids come from another tokenizer?"));
    }
  }
  return out;
}

int32_t ByteTokenizer::token_id(const std::string& token) const {
  if (token.size() == 1) return static_cast<unsigned char>(token[0]);
  if (token == kBosText) return kBos;
  if (token == kEosText) return kEos;
  return -1;
}

}  // namespace lct
