#include "data/tokenizer.h"

#include "data/tokenizer_bpe.h"
#include "data/tokenizer_bytes.h"

namespace lct {

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec) {
  if (spec == "bytes") return std::make_unique<ByteTokenizer>();
  return std::make_unique<BpeTokenizer>(spec);
}

std::string decode_generated(const Tokenizer& tok, const std::vector<int32_t>& ids, int64_t* unknown) {
  std::string out;
  std::vector<int32_t> run;  // known ids decoded together (a character may span several tokens)
  int64_t n = 0;
  for (int32_t id : ids) {
    if (tok.has_id(id)) {
      run.push_back(id);
      continue;
    }
    out += tok.decode(run) + "\xEF\xBF\xBD";  // U+FFFD
    run.clear();
    ++n;
  }
  out += tok.decode(run);
  if (unknown) *unknown = n;
  return out;
}

}  // namespace lct
