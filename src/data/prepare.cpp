#include "data/prepare.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "data/byte_file.h"
#include "data/data_files.h"
#include "data/sha256.h"
#include "data/token_stream.h"

namespace lct {

namespace {

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

constexpr int64_t kChunk = 1 << 20;  // tokens per piece when streaming

}  // namespace

TokenFormat output_format(const std::string& out, const std::string& format) {
  if (!format.empty()) return parse_format(format, "--format");
  if (ends_with(out, ".h5") || ends_with(out, ".hdf5")) return TokenFormat::Hdf5;
  if (ends_with(out, ".idx")) return TokenFormat::Megatron;
  if (ends_with(out, ".bin")) return TokenFormat::Llmc;
  return TokenFormat::Hdf5;
}

void write_documents(const std::string& out, TokenFormat format, const std::vector<Document>& docs, WriterPlan plan) {
  const bool add_eod = format != TokenFormat::Hdf5 && plan.eod_token >= 0;
  plan.num_documents = int64_t(docs.size());
  plan.num_tokens = 0;
  plan.loss_mask = false;
  for (const Document& d : docs) {
    plan.num_tokens += int64_t(d.tokens.size()) + (add_eod ? 1 : 0);
    if (!d.loss_mask.empty()) {
      LCT_CHECK(d.loss_mask.size() == d.tokens.size(), "document mask and tokens differ in length");
      plan.loss_mask = true;
    }
  }
  if (plan.dtype.bytes == 0) plan.dtype = dtype_for_format(format, dtype_for_vocab(plan.vocab_size));
  if (plan.loss_mask && format != TokenFormat::Hdf5)
    throw InputError(str(out, ": a loss mask can only be stored in the hdf5 format"));
  auto w = make_token_writer(out, format, plan);
  const uint8_t one = 1;
  std::vector<uint8_t> ones;
  for (const Document& d : docs) {
    const uint8_t* mask = nullptr;
    if (plan.loss_mask) {
      if (d.loss_mask.empty()) ones.assign(d.tokens.size(), 1);
      mask = d.loss_mask.empty() ? ones.data() : d.loss_mask.data();
    }
    w->append(d.tokens.data(), mask, int64_t(d.tokens.size()));
    if (add_eod) w->append(&plan.eod_token, &one, 1);
    w->end_document();
  }
  w->finish();
}

void convert_token_file(const std::string& in, const std::string& out, TokenFormat out_format, const ConvertOptions& opt) {
  std::unique_ptr<TokenFile> src = open_token_file(in);
  const TokenFileInfo& si = src->info();
  const bool add_eod = out_format != TokenFormat::Hdf5 && si.eod_token >= 0;
  WriterPlan plan;
  plan.vocab_size = si.vocab_size;
  plan.tokenizer = si.tokenizer;
  plan.eod_token = out_format == TokenFormat::Hdf5 ? si.eod_token : -1;
  plan.num_documents = si.num_documents;
  plan.num_tokens = si.num_tokens + (add_eod ? si.num_documents : 0);
  plan.loss_mask = si.has_loss_mask && out_format == TokenFormat::Hdf5;
  if (si.has_loss_mask && out_format != TokenFormat::Hdf5 && !opt.drop_loss_mask)
    throw InputError(str(in, " has a loss mask, which ", format_name(out_format),
                         " cannot store; write hdf5, or pass --drop-loss-mask to train on every token"));
  plan.dtype = dtype_for_format(out_format, si.vocab_size > 0 ? dtype_for_vocab(si.vocab_size) : si.dtype);
  auto w = make_token_writer(out, out_format, plan);
  std::vector<int32_t> tokens;
  std::vector<uint8_t> mask;
  std::vector<int64_t> starts;
  const uint8_t one = 1;
  for (int64_t k0 = 0; k0 < si.num_documents; k0 += kChunk) {
    const int64_t nk = std::min(kChunk, si.num_documents - k0);
    starts.resize(size_t(nk + 1));
    src->read_document_starts(k0, nk + 1, starts.data());
    for (int64_t k = 0; k < nk; ++k) {
      for (int64_t t = starts[size_t(k)]; t < starts[size_t(k + 1)]; t += kChunk) {
        const int64_t n = std::min(kChunk, starts[size_t(k + 1)] - t);
        tokens.resize(size_t(n));
        src->read_tokens(t, n, tokens.data(), si.vocab_size);
        if (plan.loss_mask) {
          mask.resize(size_t(n));
          src->read_loss_mask(t, n, mask.data());
        }
        w->append(tokens.data(), plan.loss_mask ? mask.data() : nullptr, n);
      }
      if (add_eod) w->append(&si.eod_token, &one, 1);
      w->end_document();
    }
  }
  w->finish();
}

TokenFileSummary summarize_token_file(const std::string& path, const std::string& format) {
  TokenFileSummary s;
  std::unique_ptr<TokenFile> f = open_token_file(path, format);
  s.info = f->info();
  Sha256 file_hash;
  std::vector<uint8_t> bytes(1 << 22);
  std::vector<std::string> paths = {s.info.path};
  if (s.info.data_path != s.info.path) paths.push_back(s.info.data_path);
  for (const std::string& p : paths) {
    ByteFile b(p);
    for (int64_t at = 0; at < b.size(); at += int64_t(bytes.size())) {
      const size_t n = size_t(std::min<int64_t>(int64_t(bytes.size()), b.size() - at));
      b.read(at, bytes.data(), n);
      file_hash.update(bytes.data(), n);
    }
  }
  s.file_sha256 = file_hash.hex_digest();

  std::vector<std::unique_ptr<TokenFile>> files;
  files.push_back(std::move(f));
  TokenStream stream(std::move(files), s.info.eod_token, s.info.vocab_size);
  s.stream_tokens = stream.size();
  Sha256 hash;
  std::vector<int32_t> tokens;
  std::vector<uint8_t> mask;
  std::vector<uint32_t> le;
  s.min_id = INT64_MAX;
  for (int64_t at = 0; at < stream.size(); at += kChunk) {
    const int64_t n = std::min(kChunk, stream.size() - at);
    tokens.resize(size_t(n));
    mask.resize(s.info.has_loss_mask ? size_t(n) : 0);
    stream.read(at, n, tokens.data(), mask.empty() ? nullptr : mask.data());
    le.assign(tokens.begin(), tokens.end());
    hash.update(le.data(), le.size() * 4);
    for (int32_t t : tokens) s.min_id = std::min<int64_t>(s.min_id, t), s.max_id = std::max<int64_t>(s.max_id, t);
    for (uint8_t m : mask) s.masked_tokens += m == 0;
  }
  if (s.stream_tokens == 0) s.min_id = 0;
  s.stream_sha256 = hash.hex_digest();
  return s;
}

std::string format_summary(const TokenFileSummary& s) {
  const TokenFileInfo& i = s.info;
  std::string out;
  auto line = [&](const std::string& k, const std::string& v) { out += k + ": " + v + "\n"; };
  line("file", i.path);
  if (i.data_path != i.path) line("data_file", i.data_path);
  line("format", str(format_name(i.format), i.format == TokenFormat::Llmc ? str(" (magic ", i.version == 1 ? 20240520 : 20240801, ", version ", i.version, ")")
                                                                          : str(" (version ", i.version, ")")));
  line("dtype", dtype_name(i.dtype));
  line("tokens", str(i.num_tokens));
  line("documents", str(i.num_documents));
  line("vocab_size", i.vocab_size > 0 ? str(i.vocab_size) : std::string("unknown"));
  line("tokenizer", i.tokenizer.empty() ? std::string("unknown") : i.tokenizer);
  line("eod_token", i.eod_token >= 0 ? str(i.eod_token) : std::string("none"));
  line("stream_tokens", str(s.stream_tokens));
  line("id_range", s.max_id >= 0 ? str(s.min_id, "..", s.max_id) : std::string("empty"));
  line("loss_mask", i.has_loss_mask ? str("yes (", s.masked_tokens, " of ", i.num_tokens, " tokens masked out)") : std::string("no"));
  line("stream_sha256", s.stream_sha256);
  line("file_sha256", s.file_sha256);
  return out;
}

}  // namespace lct
