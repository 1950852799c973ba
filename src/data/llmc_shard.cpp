#include "data/llmc_shard.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "core/error.h"
#include "data/file_writer.h"

namespace lct {

namespace {

class LlmcShard : public TokenFile {
 public:
  LlmcShard(TokenFileInfo info, ByteFile data) : TokenFile(std::move(info), std::move(data)) {}
  void read_document_starts(int64_t first, int64_t count, int64_t* out) const override {
    check_range(first, count, 2, "document");
    for (int64_t i = 0; i < count; ++i) out[i] = first + i == 0 ? 0 : info_.num_tokens;
  }
};

class LlmcWriter : public TokenWriter {
 public:
  LlmcWriter(const std::string& path, const WriterPlan& plan) : plan_(plan), out_(path) {
    if (plan.loss_mask)
      throw InputError(str(path, ": llm.c shards cannot hold a loss mask; write hdf5 instead"));
    if (plan.dtype.is_signed || (plan.dtype.bytes != 2 && plan.dtype.bytes != 4))
      throw InputError(str(path, ": llm.c shards hold uint16 or uint32 ids, not ", dtype_name(plan.dtype)));
    if (plan.num_tokens > INT32_MAX)
      throw InputError(str(path, ": ", plan.num_tokens, " tokens do not fit an llm.c shard (its header "
                           "count is int32, at most 2147483647); split the input into several shards"));
    std::vector<int32_t> header(256, 0);
    header[0] = plan.dtype.bytes == 2 ? kLlmcMagicGpt2 : kLlmcMagicLlama3;
    header[1] = plan.dtype.bytes == 2 ? kLlmcVersionGpt2 : kLlmcVersionLlama3;
    header[2] = int32_t(plan.num_tokens);
    out_.write(header.data(), header.size() * 4);
  }
  void append(const int32_t* tokens, const uint8_t*, int64_t n) override {
    written_ += n;
    out_.write_ids(tokens, n, plan_.dtype);
  }
  void end_document() override { ++docs_; }
  void finish() override {
    LCT_CHECK(written_ == plan_.num_tokens, "llm.c writer got ", written_, " tokens, planned ", plan_.num_tokens);
    out_.close();
  }

 private:
  WriterPlan plan_;
  FileWriter out_;
  int64_t written_ = 0, docs_ = 0;
};

}  // namespace

bool is_llmc_magic(int32_t w) { return w == kLlmcMagicGpt2 || w == kLlmcMagicLlama3; }

std::unique_ptr<TokenFile> open_llmc_shard(const std::string& path) {
  ByteFile f(path);
  const std::string where = str("llm.c shard ", path);
  if (f.size() < kLlmcHeaderBytes)
    throw InputError(str(where, ": truncated: the header needs ", kLlmcHeaderBytes, " bytes, the file has ",
                         f.size(), " (byte offset ", f.size(), ")"));
  int32_t header[3];
  f.read(0, header, sizeof header);
  TokenFileInfo info;
  info.format = TokenFormat::Llmc;
  info.path = info.data_path = path;
  if (header[0] == kLlmcMagicGpt2) {
    if (header[1] != kLlmcVersionGpt2)
      throw InputError(str(where, ": version ", header[1], " at byte offset 4; magic 20240520 (GPT-2) needs version 1"));
    info.dtype = {2, false};
  } else if (header[0] == kLlmcMagicLlama3) {
    if (header[1] != kLlmcVersionLlama3)
      throw InputError(str(where, ": version ", header[1], " at byte offset 4; magic 20240801 (Llama-3) needs version 7"));
    info.dtype = {4, false};
  } else {
    throw InputError(str(where, ": wrong magic ", header[0], " at byte offset 0; llm.c shards start with "
                         "20240520 (GPT-2, uint16) or 20240801 (Llama-3, uint32)"));
  }
  info.version = header[1];
  if (header[2] < 0)
    throw InputError(str(where, ": negative token count ", header[2], " at byte offset 8"));
  info.num_tokens = header[2];
  info.num_documents = 1;
  info.tokens_offset = kLlmcHeaderBytes;
  const int64_t expect = kLlmcHeaderBytes + info.num_tokens * info.dtype.bytes;
  if (f.size() != expect)
    throw InputError(str(where, ": the header (byte offset 8) says ", info.num_tokens, " tokens of ",
                         dtype_name(info.dtype), ", so the file should be ", expect, " bytes, but it is ",
                         f.size(), f.size() < expect ? " (truncated)" : " (extra bytes after the tokens)",
                         "; first mismatch at byte offset ", std::min(expect, f.size())));
  return std::make_unique<LlmcShard>(std::move(info), std::move(f));
}

std::unique_ptr<TokenWriter> make_llmc_writer(const std::string& path, const WriterPlan& plan) {
  return std::make_unique<LlmcWriter>(path, plan);
}

}  // namespace lct
