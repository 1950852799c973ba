#include "data/token_writer.h"

#include "data/hdf5_tokens.h"
#include "data/llmc_shard.h"
#include "data/megatron_indexed.h"

namespace lct {

TokenDType dtype_for_vocab(int64_t vocab_size) {
  return (vocab_size > 0 && vocab_size <= 65536) ? TokenDType{2, false} : TokenDType{4, false};
}

TokenDType dtype_for_format(TokenFormat format, TokenDType t) {
  switch (format) {
    case TokenFormat::Llmc: return t.bytes <= 2 ? TokenDType{2, false} : TokenDType{4, false};
    case TokenFormat::Megatron: return (t.bytes == 4 && !t.is_signed) || t.bytes > 4 ? TokenDType{4, true} : t;
    case TokenFormat::Hdf5: return t.bytes == 8 ? TokenDType{8, true} : t;
  }
  return t;
}

std::unique_ptr<TokenWriter> make_token_writer(const std::string& path, TokenFormat format, const WriterPlan& plan) {
  switch (format) {
    case TokenFormat::Llmc: return make_llmc_writer(path, plan);
    case TokenFormat::Megatron: return make_megatron_writer(path, plan);
    case TokenFormat::Hdf5: return make_hdf5_writer(path, plan);
  }
  return nullptr;
}

}  // namespace lct
