// llm.c token shards: a 256 x int32 little-endian header (magic, version, token count, zeros), then
// the tokens. GPT-2 shards: magic 20240520, version 1, uint16 ids. Llama-3 shards: magic 20240801,
// version 7, uint32 ids. Documents are not delimited by the format (llm.c puts <|endoftext|> tokens
// in the data), so a shard is one document.
#pragma once

#include <memory>
#include <string>

#include "data/token_file.h"
#include "data/token_writer.h"

namespace lct {

constexpr int32_t kLlmcMagicGpt2 = 20240520;
constexpr int32_t kLlmcVersionGpt2 = 1;
constexpr int32_t kLlmcMagicLlama3 = 20240801;
constexpr int32_t kLlmcVersionLlama3 = 7;
constexpr int64_t kLlmcHeaderBytes = 256 * 4;

// Opens and validates a shard: magic, version, and a size that matches the token count exactly.
std::unique_ptr<TokenFile> open_llmc_shard(const std::string& path);
bool is_llmc_magic(int32_t first_word);

// Writes a shard; plan.dtype must be uint16 (version 1) or uint32 (version 7). Documents are
// concatenated as they come (put separators in the tokens).
std::unique_ptr<TokenWriter> make_llmc_writer(const std::string& path, const WriterPlan& plan);

}  // namespace lct
