#include "data/tokenizer.h"

#include "data/tokenizer_bpe.h"
#include "data/tokenizer_bytes.h"

namespace lct {

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec) {
  if (spec == "bytes") return std::make_unique<ByteTokenizer>();
  return std::make_unique<BpeTokenizer>(spec);
}

}  // namespace lct
