// safetensors reader and writer: files written by safetensors.torch.save_file and transformers'
// save_pretrained (tests/data/io, made by tools/make_io_fixtures.py), round trips, sharding, partial
// reads and every validation error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io_test_util.h"
#include "test_util.h"

namespace fs = std::filesystem;
using lct::SafetensorsReader;
using lct::StDType;
using lct::test::expect_input_error;
using nlohmann::json;

namespace {

std::string io_data() { return lct::test::data_dir() + "/io"; }

json load_json(const std::string& path) { return json::parse(lct::test::read_bytes(path)); }

float expected_value(const json& v) {
  if (v.is_string()) return v.get<std::string>() == "inf" ? INFINITY : -INFINITY;
  return float(v.get<double>());
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

std::vector<float> read_all(const SafetensorsReader& r, const std::string& name) {
  std::vector<float> v(size_t(r.info(name).numel()));
  r.read_f32(name, 0, int64_t(v.size()), v.data());
  return v;
}

}  // namespace

TEST(Safetensors, ReadsSaveFileFixture) {
  const std::string path = io_data() + "/tensors.safetensors";
  auto r = SafetensorsReader::open(path);
  const json exp = load_json(io_data() + "/tensors.expected.json");
  EXPECT_EQ(r.tensors().size(), exp.size());
  EXPECT_EQ(r.metadata().at("format"), "pt");
  EXPECT_EQ(r.metadata().at("source"), "tools/make_io_fixtures.py");
  const std::map<std::string, StDType> dtypes = {{"float32", StDType::F32}, {"bfloat16", StDType::BF16},
                                                 {"float16", StDType::F16}, {"float64", StDType::F64},
                                                 {"int64", StDType::I64}};
  for (auto it = exp.begin(); it != exp.end(); ++it) {
    const std::string name = it.key();
    SCOPED_TRACE(name);
    ASSERT_TRUE(r.has(name));
    const auto& info = r.info(name);
    EXPECT_EQ(info.dtype, dtypes.at(it.value()["dtype"].get<std::string>()));
    EXPECT_EQ(info.shape, it.value()["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(info.file, path);
    if (info.dtype == StDType::I64) {
      float x;
      expect_input_error([&] { r.read_f32(name, 0, 1, &x); }, {path, "\"i64\"", "I64", "F32, BF16, F16 and F64"});
      continue;
    }
    const auto vals = read_all(r, name);
    const auto& ev = it.value()["values"];
    ASSERT_EQ(vals.size(), ev.size());
    for (size_t i = 0; i < vals.size(); ++i)
      EXPECT_TRUE(same_bits(vals[i], expected_value(ev[i]))) << i << ": " << vals[i] << " vs " << ev[i];
  }
  EXPECT_EQ(r.info("scalar").numel(), 1);
  EXPECT_TRUE(r.info("scalar").shape.empty());
  EXPECT_EQ(r.info("empty").numel(), 0);
  // Tensors come in data-offset order.
  for (size_t i = 1; i < r.tensors().size(); ++i) EXPECT_LE(r.tensors()[i - 1].end, r.tensors()[i].begin);
}

TEST(Safetensors, PartialReads) {
  auto r = SafetensorsReader::open(io_data() + "/tensors.safetensors");
  const json exp = load_json(io_data() + "/tensors.expected.json");
  for (const std::string name : {"f32", "bf16", "f16", "f64", "model.layers.0.self_attn.q_proj.weight"}) {
    SCOPED_TRACE(name);
    const auto& ev = exp[name]["values"];
    const int64_t n = int64_t(ev.size());
    for (int64_t off = 0; off <= n; ++off)
      for (int64_t cnt = 0; off + cnt <= n; cnt += 3) {
        std::vector<float> out(size_t(cnt) + 1, -7.0f);
        r.read_f32(name, off, cnt, out.data());
        for (int64_t i = 0; i < cnt; ++i) ASSERT_TRUE(same_bits(out[size_t(i)], expected_value(ev[size_t(off + i)])));
        EXPECT_EQ(out[size_t(cnt)], -7.0f);  // nothing written past count
      }
    float x;
    expect_input_error([&] { r.read_f32(name, n, 1, &x); }, {name, "cannot read elements", std::to_string(n)});
    expect_input_error([&] { r.read_f32(name, -1, 1, &x); }, {name});
    expect_input_error([&] { r.read_f32(name, 1, n, &x); }, {name});
  }
}

TEST(Safetensors, MissingTensorNamesTensorAndPath) {
  const std::string path = io_data() + "/tensors.safetensors";
  auto r = SafetensorsReader::open(path);
  EXPECT_FALSE(r.has("model.norm.weight"));
  expect_input_error([&] { r.info("model.norm.weight"); }, {path, "\"model.norm.weight\""});
  float x;
  expect_input_error([&] { r.read_f32("nope", 0, 1, &x); }, {path, "\"nope\""});
}

TEST(Safetensors, Bf16Rounding) {
  auto bf = [](float x) { return lct::bf16_to_f32(lct::f32_to_bf16(x)); };
  EXPECT_EQ(bf(1.0f), 1.0f);
  EXPECT_EQ(bf(1.0f + std::ldexp(1.0f, -8)), 1.0f);                            // tie -> even (down)
  EXPECT_EQ(bf(1.0f + 3 * std::ldexp(1.0f, -8)), 1.0f + std::ldexp(1.0f, -6));  // tie -> even (up)
  EXPECT_EQ(bf(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 1.0f + std::ldexp(1.0f, -7));  // above tie
  EXPECT_EQ(bf(-2.5f), -2.5f);
  EXPECT_EQ(bf(INFINITY), INFINITY);
  EXPECT_EQ(bf(-INFINITY), -INFINITY);
  EXPECT_TRUE(std::isnan(bf(NAN)));
  EXPECT_EQ(bf(std::numeric_limits<float>::max()), INFINITY);  // rounds past the largest bf16
  EXPECT_EQ(lct::f32_to_bf16(-0.0f), 0x8000);
  // f16 decoding: normal, subnormal, largest, inf.
  EXPECT_EQ(lct::f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(lct::f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(lct::f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(lct::f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(lct::f16_to_f32(0xfc00), -INFINITY);
  EXPECT_TRUE(std::isnan(lct::f16_to_f32(0x7e00)));
}

namespace {

struct OwnedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};

std::vector<OwnedTensor> sample_tensors(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<OwnedTensor> ts = {
      {"model.embed_tokens.weight", {10, 4}, {}}, {"model.layers.0.input_layernorm.weight", {4}, {}},
      {"model.layers.0.self_attn.q_proj.weight", {8, 4}, {}}, {"scalar", {}, {}}, {"empty", {0, 3}, {}},
      {"model.norm.weight", {4}, {}}, {"lm_head.weight", {10, 4}, {}}, {"big", {50}, {}},
  };
  for (auto& t : ts) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    t.data.resize(size_t(n));
    for (auto& x : t.data) x = nd(rng);
  }
  ts[1].data[0] = 1.0f + std::ldexp(1.0f, -8);  // a bf16 tie
  return ts;
}

std::vector<lct::StWriteTensor> views(const std::vector<OwnedTensor>& ts) {
  std::vector<lct::StWriteTensor> v;
  for (const auto& t : ts) v.push_back({t.name, t.shape, t.data.data()});
  return v;
}

void expect_round_trip(const SafetensorsReader& r, const std::vector<OwnedTensor>& ts, StDType dt) {
  ASSERT_EQ(r.tensors().size(), ts.size());
  for (const auto& t : ts) {
    SCOPED_TRACE(t.name);
    const auto& info = r.info(t.name);
    EXPECT_EQ(info.dtype, dt);
    EXPECT_EQ(info.shape, t.shape);
    const auto got = read_all(r, t.name);
    ASSERT_EQ(got.size(), t.data.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const float want = dt == StDType::BF16 ? lct::bf16_to_f32(lct::f32_to_bf16(t.data[i])) : t.data[i];
      ASSERT_TRUE(same_bits(got[i], want)) << i << ": " << got[i] << " vs " << want;
    }
  }
}

}  // namespace

TEST(Safetensors, RoundTripF32AndBf16) {
  const auto ts = sample_tensors(1);
  for (StDType dt : {StDType::F32, StDType::BF16}) {
    SCOPED_TRACE(lct::st_dtype_name(dt));
    const std::string dir = lct::test::scratch_dir(std::string("st_round_trip_") + lct::st_dtype_name(dt));
    lct::write_safetensors(dir, views(ts), dt);
    EXPECT_TRUE(fs::exists(dir + "/model.safetensors"));
    EXPECT_FALSE(fs::exists(dir + "/model.safetensors.index.json"));
    auto r = SafetensorsReader::open(dir);
    EXPECT_EQ(r.path(), dir + "/model.safetensors");
    EXPECT_EQ(r.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
    expect_round_trip(r, ts, dt);
    // Data is laid out in the given order, and the data section starts 8-byte aligned.
    for (size_t i = 0; i < ts.size(); ++i) EXPECT_EQ(r.tensors()[i].name, ts[i].name);
    const std::string bytes = lct::test::read_bytes(dir + "/model.safetensors");
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ((8 + n) % 8, 0u);
    const json h = json::parse(bytes.substr(8, n));
    EXPECT_EQ(h["__metadata__"], json({{"format", "pt"}}));
  }
}

TEST(Safetensors, ShardedWriteAndIndex) {
  const auto ts = sample_tensors(2);
  const std::string dir = lct::test::scratch_dir("st_sharded");
  const uint64_t shard_bytes = 100;  // "big" (200 bytes in F32) gets a shard of its own
  lct::write_safetensors(dir, views(ts), StDType::F32, shard_bytes);
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
  const json idx = load_json(dir + "/model.safetensors.index.json");
  uint64_t total = 0;
  for (const auto& t : ts) total += t.data.size() * 4;
  EXPECT_EQ(idx["metadata"]["total_size"].get<uint64_t>(), total);
  ASSERT_EQ(idx["weight_map"].size(), ts.size());
  std::set<std::string> files;
  for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) files.insert(it.value());
  const size_t n = files.size();
  EXPECT_GE(n, 4u);
  size_t k = 1;
  for (const auto& f : files) {
    char want[64];
    std::snprintf(want, sizeof want, "model-%05zu-of-%05zu.safetensors", k++, n);
    EXPECT_EQ(f, want);
    const auto shard = SafetensorsReader::open(dir + "/" + f);
    uint64_t bytes = 0;
    for (const auto& t : shard.tensors()) bytes += t.end - t.begin;
    EXPECT_TRUE(bytes <= shard_bytes || shard.tensors().size() == 1) << f;
  }
  for (const std::string& path : {dir, dir + "/model.safetensors.index.json"}) {
    auto r = SafetensorsReader::open(path);
    EXPECT_EQ(r.metadata().at("format"), "pt");
    EXPECT_EQ(r.metadata().at("total_size"), std::to_string(total));
    expect_round_trip(r, ts, StDType::F32);
    for (size_t i = 0; i < ts.size(); ++i) EXPECT_EQ(r.tensors()[i].name, ts[i].name);  // shard order
  }
  // Partial read from a tensor in a later shard.
  auto r = SafetensorsReader::open(dir);
  std::vector<float> part(7);
  r.read_f32("lm_head.weight", 30, 7, part.data());
  for (int i = 0; i < 7; ++i) EXPECT_EQ(part[size_t(i)], ts[6].data[size_t(30 + i)]);

  // Writing again unsharded replaces the shards and the index (a stale index would shadow nothing, but
  // stale shards would waste space and a stale model.safetensors would be loaded first).
  lct::write_safetensors(dir, views(ts), StDType::BF16);
  size_t left = 0;
  for (const auto& e : fs::directory_iterator(dir)) left += e.path().filename() != "model.safetensors";
  EXPECT_EQ(left, 0u);
  expect_round_trip(SafetensorsReader::open(dir), ts, StDType::BF16);
  // And sharded again removes the single file.
  lct::write_safetensors(dir, views(ts), StDType::BF16, 64);
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
  expect_round_trip(SafetensorsReader::open(dir), ts, StDType::BF16);
}

TEST(Safetensors, WriteRejectsBadRequests) {
  const std::string dir = lct::test::scratch_dir("st_write_bad");
  float x = 1;
  expect_input_error([&] { lct::write_safetensors(dir, {{"a", {1}, &x}}, StDType::F16); }, {"F16", "F32 or BF16"});
  expect_input_error([&] { lct::write_safetensors(dir, {{"a", {1}, &x}, {"a", {1}, &x}}, StDType::F32); },
                     {"\"a\"", "twice"});
  expect_input_error([&] { lct::write_safetensors(dir, {{"__metadata__", {1}, &x}}, StDType::F32); },
                     {"__metadata__"});
  expect_input_error([&] { lct::write_safetensors(dir, {{"a", {-1}, &x}}, StDType::F32); }, {"negative"});
}

TEST(Safetensors, ReadsTransformersShardedCheckpoint) {
  const std::string dir = io_data() + "/tiny_sharded";
  auto r = SafetensorsReader::open(dir);
  EXPECT_EQ(r.path(), dir + "/model.safetensors.index.json");
  const json exp = load_json(dir + "/expected.json");
  ASSERT_EQ(r.tensors().size(), exp.size());
  std::set<std::string> files;
  for (auto it = exp.begin(); it != exp.end(); ++it) {
    SCOPED_TRACE(it.key());
    const auto& info = r.info(it.key());
    files.insert(info.file);
    EXPECT_EQ(info.dtype, StDType::BF16);
    EXPECT_EQ(info.shape, it.value()["shape"].get<std::vector<int64_t>>());
    const auto v = read_all(r, it.key());
    double sum = 0, sumsq = 0;
    for (float x : v) {
      sum += x;
      sumsq += double(x) * x;
    }
    EXPECT_NEAR(sum, it.value()["sum"].get<double>(), 1e-9 * (1 + sumsq));
    EXPECT_NEAR(sumsq, it.value()["sumsq"].get<double>(), 1e-9 * (1 + sumsq));
    const auto first = it.value()["first"].get<std::vector<double>>();
    for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(double(v[i]), first[i]);
    EXPECT_EQ(double(v.back()), it.value()["last"].get<double>());
  }
  EXPECT_EQ(files.size(), 4u);
}

// ---- validation: each bad input is an InputError naming the file (and tensor / offset) ----

class SafetensorsBad : public ::testing::Test {
 protected:
  std::string dir = lct::test::scratch_dir("st_bad");
  std::string put(const std::string& name, const std::string& bytes) {
    const std::string p = dir + "/" + name;
    lct::test::write_bytes(p, bytes);
    return p;
  }
  void expect_open_error(const std::string& bytes, const std::vector<std::string>& needles) {
    const std::string p = put("bad.safetensors", bytes);
    std::vector<std::string> all = needles;
    all.push_back(p);
    expect_input_error([&] { SafetensorsReader::open(p); }, all);
  }
};

TEST_F(SafetensorsBad, ShortFile) { expect_open_error("abcde", {"5 bytes", "shorter than the 8-byte"}); }

TEST_F(SafetensorsBad, HeaderLengthPastEnd) {
  expect_open_error(lct::test::st_bytes_len(1000, "{}", ""), {"header length 1000", "byte 0", "past the end"});
}

TEST_F(SafetensorsBad, HeaderLengthAbsurd) {
  expect_open_error(lct::test::st_bytes_len(200'000'000, "{}", ""), {"header length 200000000", "100000000-byte limit"});
  expect_open_error(lct::test::st_bytes_len(~uint64_t(1), "{}", ""), {"header length 18446744073709551614"});
}

TEST_F(SafetensorsBad, HeaderNotJson) {
  expect_open_error(lct::test::st_bytes("{\"a\": {\"dtype\": \"F32\",", ""), {"not valid JSON", "byte"});
  expect_open_error(lct::test::st_bytes(std::string(40, '['), ""), {"deeper than"});
}

TEST_F(SafetensorsBad, HeaderNotObject) { expect_open_error(lct::test::st_bytes("[1, 2]", ""), {"not an object"}); }

TEST_F(SafetensorsBad, MissingFields) {
  const std::string data(8, '\0');
  expect_open_error(lct::test::st_bytes(R"({"w": {"shape": [2], "data_offsets": [0, 8]}})", data),
                    {"\"w\"", "no \"dtype\""});
  expect_open_error(lct::test::st_bytes(R"({"w": {"dtype": "F32", "data_offsets": [0, 8]}})", data),
                    {"\"w\"", "no \"shape\""});
  expect_open_error(lct::test::st_bytes(R"({"w": {"dtype": "F32", "shape": [2]}})", data),
                    {"\"w\"", "no \"data_offsets\""});
  expect_open_error(lct::test::st_bytes(R"({"w": 3})", data), {"\"w\"", "not an object"});
  expect_open_error(lct::test::st_bytes(R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", data),
                    {"\"w\"", "non-negative integer"});
  expect_open_error(lct::test::st_bytes(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", data),
                    {"\"w\"", "[begin, end]"});
}

TEST_F(SafetensorsBad, UnknownDtype) {
  expect_open_error(lct::test::st_bytes(R"({"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}})",
                                        std::string(16, '\0')),
                    {"\"w\"", "unknown dtype \"F128\""});
}

TEST_F(SafetensorsBad, ReversedOffsets) {
  expect_open_error(lct::test::st_bytes(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})",
                                        std::string(8, '\0')),
                    {"\"w\"", "[8, 4]", "reversed"});
}

TEST_F(SafetensorsBad, OverlappingOffsets) {
  const std::string h = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})";
  const uint64_t start = 8 + h.size();
  expect_open_error(lct::test::st_bytes(h, std::string(12, '\0')),
                    {"\"a\"", "\"b\"", "overlap", "bytes " + std::to_string(start + 4)});
}

TEST_F(SafetensorsBad, OffsetsOutsideData) {
  const std::string h = R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})";
  expect_open_error(lct::test::st_bytes(h, std::string(12, '\0')),
                    {"\"w\"", "past the end of the file", "byte " + std::to_string(8 + h.size() + 16)});
}

TEST_F(SafetensorsBad, SizeMismatch) {
  expect_open_error(lct::test::st_bytes(R"({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}})",
                                        std::string(8, '\0')),
                    {"\"w\"", "span 8 bytes", "[3] x BF16", "3 x 2"});
}

TEST_F(SafetensorsBad, DuplicateTensorAndBadMetadata) {
  expect_open_error(lct::test::st_bytes(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                                            "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})",
                                        "ab"),
                    {"\"w\"", "twice"});
  expect_open_error(lct::test::st_bytes(R"({"__metadata__": {"format": 1}})", ""), {"__metadata__", "format"});
}

TEST_F(SafetensorsBad, TruncatedAfterOpen) {
  const std::string h = R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})";
  const std::string p = put("shrinks.safetensors", lct::test::st_bytes(h, std::string(16, '\0')));
  auto r = SafetensorsReader::open(p);
  fs::resize_file(p, 8 + h.size() + 4);
  std::vector<float> out(4);
  expect_input_error([&] { r.read_f32("w", 0, 4, out.data()); }, {p, "end of file"});
}

TEST_F(SafetensorsBad, Index) {
  const std::string shard = lct::test::st_bytes(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                                                std::string(4, '\0'));
  put("s1.safetensors", shard);
  const std::string idx_path = dir + "/model.safetensors.index.json";
  auto index_error = [&](const std::string& text, std::vector<std::string> needles) {
    lct::test::write_bytes(idx_path, text);
    needles.push_back(idx_path);
    expect_input_error([&] { SafetensorsReader::open(dir); }, needles);
  };
  index_error(R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})",
              {"\"b\"", "s2.safetensors", "does not exist"});
  index_error(R"({"weight_map": {"a": "s1.safetensors", "z": "s1.safetensors"}})",
              {"\"z\"", "s1.safetensors", "no such tensor"});
  index_error(R"({"metadata": {}})", {"weight_map"});
  index_error(R"({"weight_map": {"a": "../s1.safetensors"}})", {"relative names"});
  index_error(R"({"weight_map": {"a": 5}})", {"\"a\"", "not a file name"});
  index_error(R"({"weight_map": )", {"not valid JSON"});
  // A valid index opens, and shard files are validated like single files.
  lct::test::write_bytes(idx_path, R"({"weight_map": {"a": "s1.safetensors"}})");
  EXPECT_EQ(SafetensorsReader::open(dir).tensors().size(), 1u);
  put("s1.safetensors", "xyz");
  expect_input_error([&] { SafetensorsReader::open(dir); }, {dir + "/s1.safetensors", "shorter than"});
}

TEST_F(SafetensorsBad, PathsThatHoldNoCheckpoint) {
  expect_input_error([&] { SafetensorsReader::open(dir + "/missing.safetensors"); },
                     {dir + "/missing.safetensors", "no such file"});
  const std::string empty = lct::test::scratch_dir("st_bad_empty");
  expect_input_error([&] { SafetensorsReader::open(empty); }, {empty, "no model.safetensors"});
  put("one.safetensors", lct::test::st_bytes("{}", ""));
  put("two.safetensors", lct::test::st_bytes("{}", ""));
  expect_input_error([&] { SafetensorsReader::open(dir); }, {"2 *.safetensors", "one.safetensors"});
}
