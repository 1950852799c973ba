// Our readers read the fixtures made by each format's own writer; our writers reproduce them byte
// for byte; every format round-trips documents, masks and attributes.
#include <unistd.h>

#include <sstream>

#include "data/data_files.h"
#include "data/megatron_indexed.h"
#include "data/sha256.h"
#include "data/token_stream.h"
#include "data_test_util.h"

namespace lct {
namespace {

using test::expected_fixtures;
using test::file_bytes;
using test::formats_dir;

std::vector<int32_t> read_all_tokens(const TokenFile& f) {
  std::vector<int32_t> t(size_t(f.info().num_tokens));
  f.read_tokens(0, int64_t(t.size()), t.data(), 0);
  return t;
}

std::vector<int32_t> read_stream(std::unique_ptr<TokenFile> f, std::vector<uint8_t>* mask = nullptr) {
  const int32_t eod = f->info().eod_token;
  std::vector<std::unique_ptr<TokenFile>> files;
  files.push_back(std::move(f));
  TokenStream s(std::move(files), eod, 0);
  std::vector<int32_t> t(size_t(s.size()));
  if (mask) mask->resize(t.size());
  s.read(0, s.size(), t.data(), mask ? mask->data() : nullptr);
  return t;
}

TEST(DataFormats, FixtureChecksumsMatchSha256Sums) {
  std::ifstream in(formats_dir() + "/SHA256SUMS");
  ASSERT_TRUE(bool(in));
  std::string sum, name;
  int n = 0;
  while (in >> sum >> name) {
    Sha256 h;
    const auto b = file_bytes(formats_dir() + "/" + name);
    h.update(b.data(), b.size());
    EXPECT_EQ(h.hex_digest(), sum) << name;
    ++n;
  }
  EXPECT_GE(n, 10);
}

TEST(DataFormats, Sha256KnownAnswers) {
  Sha256 a;
  EXPECT_EQ(a.hex_digest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 b;
  b.update("abc", 3);
  EXPECT_EQ(b.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 c;  // two blocks, fed in odd pieces
  const std::string m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  c.update(m.data(), 5);
  c.update(m.data() + 5, m.size() - 5);
  EXPECT_EQ(c.hex_digest(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(DataFormats, ReadsEveryFixture) {
  const auto exp = expected_fixtures();
  ASSERT_GE(exp.size(), 6u);
  for (const auto& [name, e] : exp.items()) {
    SCOPED_TRACE(name);
    std::unique_ptr<TokenFile> f = open_token_file(formats_dir() + "/" + name);
    const TokenFileInfo& info = f->info();
    EXPECT_EQ(format_name(info.format), e["format"].get<std::string>());
    EXPECT_EQ(dtype_name(info.dtype), e["dtype"].get<std::string>());
    EXPECT_EQ(info.version, e["version"].get<int64_t>());
    EXPECT_EQ(info.vocab_size, e["vocab_size"].get<int64_t>());
    EXPECT_EQ(info.eod_token, e["eod_token"].get<int32_t>());
    if (e.contains("tokenizer")) { EXPECT_EQ(info.tokenizer, e["tokenizer"].get<std::string>()); }
    const auto starts = e["doc_starts"].get<std::vector<int64_t>>();
    ASSERT_EQ(info.num_documents + 1, int64_t(starts.size()));
    std::vector<int64_t> got(starts.size());
    f->read_document_starts(0, int64_t(got.size()), got.data());
    EXPECT_EQ(got, starts);
    EXPECT_EQ(read_all_tokens(*f), e["tokens"].get<std::vector<int32_t>>());
    EXPECT_EQ(info.has_loss_mask, !e["loss_mask"].is_null());
    std::vector<uint8_t> mask;
    EXPECT_EQ(read_stream(std::move(f), &mask), e["stream"].get<std::vector<int32_t>>());
    if (!e["loss_mask"].is_null()) { EXPECT_EQ(mask, e["loss_mask"].get<std::vector<uint8_t>>()); }
  }
}

// Documents of a fixture as recorded in expected.json.
std::vector<Document> fixture_docs(const nlohmann::json& e) {
  const auto starts = e["doc_starts"].get<std::vector<int64_t>>();
  const auto tokens = e["tokens"].get<std::vector<int32_t>>();
  std::vector<Document> docs;
  for (size_t k = 0; k + 1 < starts.size(); ++k)
    docs.push_back({std::vector<int32_t>(tokens.begin() + starts[k], tokens.begin() + starts[k + 1]), {}});
  return docs;
}

TEST(DataFormats, WritersReproduceFixturesByteForByte) {
  const auto exp = expected_fixtures();
  const std::string dir = test::scratch_dir("data_formats_bytes");
  struct Case {
    const char* name;
    TokenFormat format;
    TokenDType dtype;
  };
  for (const Case& c : {Case{"llmc_gpt2.bin", TokenFormat::Llmc, {2, false}},
                        Case{"llmc_llama3.bin", TokenFormat::Llmc, {4, false}},
                        Case{"megatron_u16.idx", TokenFormat::Megatron, {2, false}},
                        Case{"megatron_i32.idx", TokenFormat::Megatron, {4, true}}}) {
    SCOPED_TRACE(c.name);
    WriterPlan plan = test::plan_for(0, -1, "");
    plan.dtype = c.dtype;
    const std::string out = dir + "/" + c.name;
    write_documents(out, c.format, fixture_docs(exp[c.name]), plan);
    if (c.format == TokenFormat::Megatron) {
      const std::string p = megatron_prefix(out), q = megatron_prefix(formats_dir() + "/" + c.name);
      EXPECT_EQ(file_bytes(p + ".idx"), file_bytes(q + ".idx"));
      EXPECT_EQ(file_bytes(p + ".bin"), file_bytes(q + ".bin"));
    } else {
      EXPECT_EQ(file_bytes(out), file_bytes(formats_dir() + "/" + c.name));
    }
  }
  // The native format: our writer's output is committed (lcdata convert of the h5py fixture).
  ASSERT_TRUE(exp.contains("lcdata_native.h5")) << "lcdata_native.h5 missing (tools/make_data_fixtures.py --lcdata)";
  const std::string out = dir + "/native.h5";
  convert_token_file(formats_dir() + "/h5py_native.h5", out, TokenFormat::Hdf5, {});
  EXPECT_EQ(file_bytes(out), file_bytes(formats_dir() + "/lcdata_native.h5"));
}

TEST(DataFormats, Hdf5WriterIsDeterministic) {
  const std::string dir = test::scratch_dir("data_formats_det");
  const auto docs = test::random_docs(7, 9, 0, 300, 70000, true);
  write_documents(dir + "/a.h5", TokenFormat::Hdf5, docs, test::plan_for(70000, 5, "tok"));
  sleep(1);  // a timestamp anywhere in the file would now differ
  write_documents(dir + "/b.h5", TokenFormat::Hdf5, docs, test::plan_for(70000, 5, "tok"));
  EXPECT_EQ(file_bytes(dir + "/a.h5"), file_bytes(dir + "/b.h5"));
}

TEST(DataFormats, RoundTripEveryFormat) {
  const std::string dir = test::scratch_dir("data_formats_rt");
  for (int32_t vocab : {300, 70000}) {
    for (TokenFormat fmt : {TokenFormat::Llmc, TokenFormat::Megatron, TokenFormat::Hdf5}) {
      SCOPED_TRACE(str(format_name(fmt), " vocab ", vocab));
      const bool mask = fmt == TokenFormat::Hdf5;
      const auto docs = test::random_docs(uint64_t(vocab) + int(fmt), 11, 0, 90, vocab, mask);
      const std::string out = dir + "/rt_" + format_name(fmt) + std::to_string(vocab) + (fmt == TokenFormat::Hdf5 ? ".h5" : ".bin");
      write_documents(out, fmt, docs, test::plan_for(vocab, vocab - 1));
      std::unique_ptr<TokenFile> f = open_token_file(fmt == TokenFormat::Megatron ? megatron_prefix(out) : out);
      EXPECT_EQ(f->info().format, fmt);
      // The stream is the documents each followed by eod, whatever the format.
      std::vector<int32_t> want;
      std::vector<uint8_t> want_mask;
      for (const auto& d : docs) {
        want.insert(want.end(), d.tokens.begin(), d.tokens.end());
        want.push_back(vocab - 1);
        want_mask.insert(want_mask.end(), d.loss_mask.begin(), d.loss_mask.end());
        want_mask.push_back(1);
      }
      if (fmt == TokenFormat::Llmc) { EXPECT_EQ(f->info().num_documents, 1); }
      if (fmt != TokenFormat::Llmc) { EXPECT_EQ(f->info().num_documents, 11); }
      std::vector<uint8_t> got_mask;
      EXPECT_EQ(read_stream(std::move(f), mask ? &got_mask : nullptr), want);
      if (mask) { EXPECT_EQ(got_mask, want_mask); }
    }
  }
}

TEST(DataFormats, ConvertKeepsTheStreamChecksum) {
  const std::string dir = test::scratch_dir("data_formats_convert");
  const auto docs = test::random_docs(3, 20, 0, 200, 50000);
  write_documents(dir + "/src.h5", TokenFormat::Hdf5, docs, test::plan_for(50000, 49999));
  const std::string want = summarize_token_file(dir + "/src.h5").stream_sha256;
  convert_token_file(dir + "/src.h5", dir + "/a.bin", TokenFormat::Llmc, {});
  convert_token_file(dir + "/src.h5", dir + "/b", TokenFormat::Megatron, {});
  convert_token_file(dir + "/b.idx", dir + "/c.h5", TokenFormat::Hdf5, {});
  convert_token_file(dir + "/a.bin", dir + "/d.h5", TokenFormat::Hdf5, {});
  for (const char* p : {"/a.bin", "/b.idx", "/b.bin", "/b", "/c.h5", "/d.h5"}) {
    const auto s = summarize_token_file(dir + p);
    EXPECT_EQ(s.stream_sha256, want) << p;
  }
  EXPECT_EQ(summarize_token_file(dir + "/c.h5").info.num_documents, 20);
  EXPECT_EQ(summarize_token_file(dir + "/a.bin").info.dtype.bytes, 2);
}

TEST(DataFormats, ConvertRefusesToDropALossMaskSilently) {
  const std::string dir = test::scratch_dir("data_formats_mask");
  write_documents(dir + "/m.h5", TokenFormat::Hdf5, test::random_docs(4, 3, 1, 20, 100, true), test::plan_for(100, -1));
  test::expect_input_error([&] { convert_token_file(dir + "/m.h5", dir + "/m.bin", TokenFormat::Llmc, {}); },
                           {"loss mask", "--drop-loss-mask"});
  ConvertOptions opt;
  opt.drop_loss_mask = true;
  convert_token_file(dir + "/m.h5", dir + "/m.bin", TokenFormat::Llmc, opt);
  EXPECT_FALSE(summarize_token_file(dir + "/m.bin").info.has_loss_mask);
}

TEST(DataFormats, DetectsByContentNotName) {
  const std::string dir = test::scratch_dir("data_formats_detect");
  const auto docs = test::random_docs(5, 2, 3, 9, 100);
  write_documents(dir + "/looks_like.h5", TokenFormat::Llmc, docs, test::plan_for(100, -1));
  write_documents(dir + "/shard.bin", TokenFormat::Megatron, docs, test::plan_for(100, -1));
  EXPECT_EQ(detect_format(dir + "/looks_like.h5"), TokenFormat::Llmc);
  EXPECT_EQ(detect_format(dir + "/shard.bin"), TokenFormat::Megatron);  // the .bin of a pair
  EXPECT_EQ(detect_format(dir + "/shard.idx"), TokenFormat::Megatron);
  EXPECT_EQ(detect_format(dir + "/shard"), TokenFormat::Megatron);      // a prefix
  // A directory and a glob list the pair once, by its .idx.
  const auto listed = expand_data_paths({dir}, "auto");
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0], dir + "/looks_like.h5");
  EXPECT_EQ(listed[1], dir + "/shard.idx");
  EXPECT_EQ(expand_data_paths({dir + "/sh*"}, "megatron"), std::vector<std::string>{dir + "/shard.idx"});
  test::expect_input_error([&] { expand_data_paths({dir + "/*"}, "hdf5"); }, {"looks_like.h5", "llmc"});
}

TEST(DataFormats, SummaryReportsCountsRangeAndChecksum) {
  const auto s = summarize_token_file(formats_dir() + "/h5py_native.h5");
  EXPECT_EQ(s.info.num_documents, 4);
  EXPECT_EQ(s.stream_tokens, s.info.num_tokens + 4);
  EXPECT_LE(s.max_id, 999);
  EXPECT_GT(s.masked_tokens, 0);
  EXPECT_EQ(s.stream_sha256.size(), 64u);
  const std::string text = format_summary(s);
  for (const char* k : {"format: hdf5", "tokens:", "documents: 4", "eod_token: 999", "id_range:", "stream_sha256:"})
    EXPECT_NE(text.find(k), std::string::npos) << k << "\n" << text;
}

}  // namespace
}  // namespace lct
