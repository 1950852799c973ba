// Every kind of bad input is an InputError that names the file and the byte offset: wrong magic,
// truncation, counts that do not match the size, ids >= vocab_size, empty globs, missing files.
#include <hdf5.h>

#include <sys/stat.h>

#include <cstring>

#include "data/byte_file.h"
#include "data/data_files.h"
#include "data/loader.h"
#include "data/megatron_indexed.h"
#include "data_test_util.h"

namespace lct {
namespace {

using test::expect_input_error;
using test::file_bytes;
using test::write_bytes;

struct Dir {
  std::string path;
  explicit Dir(const std::string& name) : path(test::scratch_dir(name)) {}
  std::string operator/(const std::string& f) const { return path + "/" + f; }
};

void put_i32(std::vector<uint8_t>& b, size_t at, int32_t v) { std::memcpy(b.data() + at, &v, 4); }
void put_i64(std::vector<uint8_t>& b, size_t at, int64_t v) { std::memcpy(b.data() + at, &v, 8); }

std::string llmc_fixture() { return test::formats_dir() + "/llmc_gpt2.bin"; }

TEST(DataErrors, LlmcWrongMagicVersionTruncatedAndExtended) {
  Dir d("data_err_llmc");
  auto good = file_bytes(llmc_fixture());
  auto b = good;
  put_i32(b, 0, 12345);
  write_bytes(d / "magic.bin", b);
  expect_input_error([&] { open_token_file(d / "magic.bin", "llmc"); }, {d / "magic.bin", "byte offset 0", "magic"});
  expect_input_error([&] { open_token_file(d / "magic.bin"); }, {d / "magic.bin", "unrecognised format"});
  b = good;
  put_i32(b, 4, 7);
  write_bytes(d / "version.bin", b);
  expect_input_error([&] { open_token_file(d / "version.bin"); }, {d / "version.bin", "byte offset 4", "version 7"});
  write_bytes(d / "header.bin", std::vector<uint8_t>(good.begin(), good.begin() + 600));
  expect_input_error([&] { open_token_file(d / "header.bin"); }, {d / "header.bin", "truncated", "byte offset 600"});
  write_bytes(d / "short.bin", std::vector<uint8_t>(good.begin(), good.end() - 3));
  expect_input_error([&] { open_token_file(d / "short.bin"); },
                     {d / "short.bin", "truncated", str("byte offset ", good.size() - 3), "byte offset 8"});
  b = good;
  b.push_back(0);
  write_bytes(d / "long.bin", b);
  expect_input_error([&] { open_token_file(d / "long.bin"); }, {d / "long.bin", "extra bytes", str("byte offset ", good.size())});
  b = good;
  put_i32(b, 8, -5);
  write_bytes(d / "neg.bin", b);
  expect_input_error([&] { open_token_file(d / "neg.bin"); }, {d / "neg.bin", "negative token count", "byte offset 8"});
}

TEST(DataErrors, MegatronHeaderCountsAndOffsets) {
  Dir d("data_err_megatron");
  const std::string fx = test::formats_dir() + "/megatron_u16";
  const auto idx = file_bytes(fx + ".idx"), bin = file_bytes(fx + ".bin");
  auto make = [&](const std::string& name, std::vector<uint8_t> i, std::vector<uint8_t> b) {
    write_bytes(d / (name + ".idx"), i);
    write_bytes(d / (name + ".bin"), b);
    return d / (name + ".idx");
  };
  auto b = idx;
  b[3] = 'X';
  std::string p = make("magic", b, bin);
  expect_input_error([&] { open_token_file(p, "megatron"); }, {p, "wrong magic", "byte offset 0"});
  b = idx;
  put_i64(b, 9, 2);
  p = make("version", b, bin);
  expect_input_error([&] { open_token_file(p); }, {p, "version 2", "byte offset 9"});
  b = idx;
  b[17] = 6;
  p = make("float", b, bin);
  expect_input_error([&] { open_token_file(p); }, {p, "dtype code 6", "byte offset 17"});
  p = make("trunc", std::vector<uint8_t>(idx.begin(), idx.begin() + 20), bin);
  expect_input_error([&] { open_token_file(p); }, {p, "truncated", "byte offset 20"});
  b = idx;
  put_i64(b, 18, 5);  // one sequence more than stored
  p = make("count", b, bin);
  expect_input_error([&] { open_token_file(p); }, {p, "5 sequences"});
  b = idx;
  put_i64(b, 18, int64_t(1) << 60);
  p = make("huge", b, bin);
  expect_input_error([&] { open_token_file(p); }, {p, "byte offset 18"});
  p = make("binshort", idx, std::vector<uint8_t>(bin.begin(), bin.end() - 2));
  expect_input_error([&] { open_token_file(p); }, {d / "binshort.bin", "truncated", str("byte offset ", bin.size() - 2)});
  b = idx;
  put_i64(b, 34 + 4 * 4 + 8 * 2, 7);  // third sequence's byte offset
  p = make("pointer", b, bin);
  expect_input_error([&] { open_token_file(p); }, {p, "sequence 2", str("byte offset ", 34 + 16 + 16)});
  b = idx;
  put_i64(b, 34 + 4 * 4 + 8 * 4 + 8 * 2, 9);  // document index entry 2 > S
  p = make("docidx", b, bin);
  expect_input_error([&] { open_token_file(p); }, {p, "document index entry 2", str("byte offset ", 34 + 16 + 32 + 16)});
  b = idx;
  put_i32(b, 34, -3);
  p = make("neglen", b, bin);
  expect_input_error([&] { open_token_file(p); }, {p, "negative sequence length", "byte offset 34"});
  write_bytes(d / "nobin.idx", idx);
  expect_input_error([&] { open_token_file(d / "nobin.idx"); }, {d / "nobin.bin", "no such file"});
}

// Writes a file through the HDF5 C API, for layouts our writer never produces.
void write_odd_hdf5(const std::string& path, bool chunked, bool with_version) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t n = 10, chunk = 5;
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (chunked) H5Pset_chunk(dcpl, 1, &chunk);
  hid_t ds = H5Dcreate2(f, "tokens", H5T_STD_U16LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  std::vector<int32_t> ids(10, 3);
  H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids.data());
  hsize_t two = 2;
  hid_t space2 = H5Screate_simple(1, &two, nullptr);
  hid_t ds2 = H5Dcreate2(f, "doc_offsets", H5T_STD_I64LE, space2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int64_t offs[2] = {0, 10};
  H5Dwrite(ds2, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, offs);
  if (with_version) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "format_version", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    int64_t v = 1;
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Sclose(s);
  }
  H5Dclose(ds2), H5Sclose(space2), H5Dclose(ds), H5Pclose(dcpl), H5Sclose(space), H5Fclose(f);
}

// Byte offset of a dataset's raw data in a file we wrote.
int64_t raw_offset(const std::string& path, const char* name) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
  const int64_t off = int64_t(H5Dget_offset(ds));
  H5Dclose(ds), H5Fclose(f);
  return off;
}

TEST(DataErrors, Hdf5LayoutAttributesAndOffsets) {
  Dir d("data_err_hdf5");
  write_odd_hdf5(d / "chunked.h5", true, true);
  expect_input_error([&] { open_token_file(d / "chunked.h5"); }, {d / "chunked.h5", "chunked", "h5repack"});
  write_odd_hdf5(d / "noversion.h5", false, false);
  expect_input_error([&] { open_token_file(d / "noversion.h5"); }, {d / "noversion.h5", "format_version"});
  write_odd_hdf5(d / "ok.h5", false, true);
  EXPECT_EQ(open_token_file(d / "ok.h5")->info().num_tokens, 10);

  const std::string good = d / "good.h5";
  write_documents(good, TokenFormat::Hdf5, test::random_docs(1, 4, 5, 20, 500, true), test::plan_for(500, 499));
  const auto bytes = file_bytes(good);
  const int64_t docs_at = raw_offset(good, "doc_offsets"), mask_at = raw_offset(good, "loss_mask");
  auto b = bytes;
  put_i64(b, size_t(docs_at + 16), 1 << 20);
  write_bytes(d / "docs.h5", b);
  expect_input_error([&] { open_token_file(d / "docs.h5"); }, {d / "docs.h5", "/doc_offsets[2]", str("byte offset ", docs_at + 16)});
  b = bytes;
  b[size_t(mask_at + 3)] = 7;
  write_bytes(d / "mask.h5", b);
  DataOptions opt;
  opt.train = {d / "mask.h5"};
  opt.shuffle = false;
  opt.prefetch = 0;
  DataLoader loader(opt, 8, 1, 0, 1);
  expect_input_error([&] { loader.next_step(); }, {d / "mask.h5", "loss_mask value 7", str("byte offset ", mask_at + 3)});
  write_bytes(d / "trunc.h5", std::vector<uint8_t>(bytes.begin(), bytes.begin() + int64_t(bytes.size()) / 2));
  expect_input_error([&] { open_token_file(d / "trunc.h5"); }, {d / "trunc.h5"});
  write_bytes(d / "sig.h5", std::vector<uint8_t>(bytes.begin(), bytes.begin() + 7));
  expect_input_error([&] { open_token_file(d / "sig.h5", "hdf5"); }, {d / "sig.h5", "truncated"});
}

// Adds one root attribute to an HDF5 file: an integer (n values: n != 1 is not a scalar) or a
// string (fixed or variable length).
void add_root_attribute(const std::string& path, const char* name, const std::string& text, int64_t n_ints,
                        bool variable_string = false) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hsize_t n = hsize_t(n_ints);
  hid_t space = n_ints == 1 || n_ints == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr);
  if (n_ints > 0) {
    std::vector<int64_t> v(size_t(n_ints), 7);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, v.data());
    H5Aclose(a);
  } else {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, variable_string ? H5T_VARIABLE : text.size());
    hid_t a = H5Acreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* c = text.c_str();
    if (variable_string) H5Awrite(a, type, &c);
    else H5Awrite(a, type, c);
    H5Aclose(a), H5Tclose(type);
  }
  H5Sclose(space), H5Fclose(f);
}

TEST(DataErrors, Hdf5RootAttributesOfTheWrongKind) {
  Dir d("data_err_hdf5_attr");
  const auto fresh = [&](const std::string& name) {
    write_odd_hdf5(d / name, false, true);
    return std::string(d / name);
  };
  std::string p = fresh("vocab_string.h5");
  add_root_attribute(p, "vocab_size", "500", 0);
  expect_input_error([&] { open_token_file(p); }, {p, "attribute vocab_size must be one integer"});
  p = fresh("eod_array.h5");
  add_root_attribute(p, "eod_token", "", 2);
  expect_input_error([&] { open_token_file(p); }, {p, "attribute eod_token must be one integer"});
  p = fresh("tokenizer_int.h5");
  add_root_attribute(p, "tokenizer", "", 1);
  expect_input_error([&] { open_token_file(p); }, {p, "attribute tokenizer must be one string"});
  p = fresh("tokenizer_fixed.h5");
  add_root_attribute(p, "tokenizer", "bytes", 0);
  EXPECT_EQ(open_token_file(p)->info().tokenizer, "bytes");
  p = fresh("tokenizer_variable.h5");
  add_root_attribute(p, "tokenizer", "input/ruler_bpe/tokenizer.json", 0, true);
  EXPECT_EQ(open_token_file(p)->info().tokenizer, "input/ruler_bpe/tokenizer.json");
}

TEST(DataErrors, TokenIdAtOrAboveVocabNamesFileAndOffset) {
  Dir d("data_err_vocab");
  std::vector<Document> docs(1);
  for (int i = 0; i < 100; ++i) docs[0].tokens.push_back(i == 57 ? 4000 : i % 50);
  WriterPlan plan = test::plan_for(0, -1);
  plan.dtype = {2, false};
  write_documents(d / "v.bin", TokenFormat::Llmc, docs, plan);
  for (int prefetch : {0, 2}) {
    DataOptions opt;
    opt.train = {d / "v.bin"};
    opt.vocab_size = 1000;
    opt.shuffle = false;
    opt.prefetch = prefetch;
    DataLoader loader(opt, 9, 2, 0, 1);
    loader.next_step();  // samples 0, 1: tokens 0..18
    loader.next_step();  // tokens 18..36
    loader.next_step();  // tokens 36..54
    const std::vector<std::string> needles = {d / "v.bin", "token id 4000", str("byte offset ", 1024 + 57 * 2),
                                              "vocabulary size 1000"};
    expect_input_error([&] { loader.next_step(); }, needles);
    expect_input_error([&] { loader.next_step(); }, needles);  // stays failed until a seek
    loader.seek(0);
    EXPECT_EQ(loader.next_step().size(), 2u);
  }
  // A file that declares a larger vocabulary than the model's is refused when opened.
  write_documents(d / "big.h5", TokenFormat::Hdf5, test::random_docs(2, 2, 5, 9, 100), test::plan_for(128256, -1));
  DataOptions opt;
  opt.train = {d / "big.h5"};
  opt.vocab_size = 32000;
  expect_input_error([&] { DataLoader(opt, 4, 1, 0, 1); }, {d / "big.h5", "128256", "32000"});
}

TEST(DataErrors, ListsGlobsAndOptions) {
  Dir d("data_err_list");
  DataOptions opt;
  opt.train = {d / "*.bin"};
  expect_input_error([&] { DataLoader(opt, 4, 1, 0, 1); }, {d / "*.bin", "matches no files"});
  opt.train = {d / "missing.bin"};
  expect_input_error([&] { DataLoader(opt, 4, 1, 0, 1); }, {d / "missing.bin", "no such file"});
  opt.train = {d.path};
  expect_input_error([&] { DataLoader(opt, 4, 1, 0, 1); }, {d.path, "no files"});
  opt.train = {};
  expect_input_error([&] { DataLoader(opt, 4, 1, 0, 1); }, {"no data files"});
  write_bytes(d / "notes.txt", {'h', 'i', '\n'});
  opt.train = {d.path};
  expect_input_error([&] { DataLoader(opt, 4, 1, 0, 1); }, {d / "notes.txt", "unrecognised format", "offset 0"});
  opt.train = {llmc_fixture()};
  opt.format = "parquet";
  expect_input_error([&] { DataLoader(opt, 4, 1, 0, 1); }, {"parquet", "llmc, megatron or hdf5"});
  opt.format = "megatron";
  expect_input_error([&] { DataLoader(opt, 4, 1, 0, 1); }, {llmc_fixture(), "llmc"});
  opt.format = "auto";
  expect_input_error([&] { DataLoader(opt, 4, 6, 0, 4); }, {"6 samples", "dp = 4"});
  expect_input_error([&] { DataLoader(opt, 100000, 1, 0, 1); }, {"seq_len + 1 = 100001"});
  opt.vocab_size = 50257;
  opt.eod_token = 60000;
  expect_input_error([&] { DataLoader(opt, 4, 1, 0, 1); }, {"eod_token 60000", "50257"});
}

// /tokens as an external link: HDF5 follows it, but the byte offset is the other file's and the
// reader would take tokens from this one (silently wrong ids).
TEST(DataErrors, Hdf5TokensAsAnExternalLinkIsRefused) {
  Dir d("data_err_hdf5_link");
  const std::string good = d / "good.h5", linked = d / "linked.h5";
  write_documents(good, TokenFormat::Hdf5, test::random_docs(1, 4, 5, 20, 500, true), test::plan_for(500, 499));
  write_bytes(linked, file_bytes(good));
  hid_t f = H5Fopen(linked.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  ASSERT_GE(H5Ldelete(f, "tokens", H5P_DEFAULT), 0);
  ASSERT_GE(H5Lcreate_external(good.c_str(), "/tokens", f, "tokens", H5P_DEFAULT, H5P_DEFAULT), 0);
  H5Fclose(f);
  expect_input_error([&] { open_token_file(linked); }, {linked, "/tokens is a soft or external link"});
}

// A named pipe is not a shard: opening it for reading waited for a writer forever (lcdata info).
TEST(DataErrors, AFifoIsRejectedWithoutWaiting) {
  Dir d("data_err_fifo");
  const std::string fifo = d / "pipe.bin";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  expect_input_error([&] { ByteFile f(fifo); }, {fifo, "not a regular file"});
}

}  // namespace
}  // namespace lct
