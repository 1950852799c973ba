// Tokenizer tests: ids equal to HF tokenizers' on the committed cases (tools/make_tokenizer_fixture.py
// wrote them), decode, the byte tokenizer, invalid UTF-8, and the errors bad files give.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/tokenizer.h"
#include "data/tokenizer_bpe.h"
#include "data/tokenizer_bytes.h"
#include "data/tokenizer_pretok.h"
#include "data/unicode.h"
#include "test_util.h"

namespace lct {
namespace {

using json = nlohmann::json;

std::string fixture_dir() { return test::data_dir() + "/tokenizer"; }

const json& cases() {
  static const json j = [] {
    std::ifstream in(fixture_dir() + "/cases.json");
    EXPECT_TRUE(in.good()) << "missing " << fixture_dir() << "/cases.json";
    return json::parse(in);
  }();
  return j;
}

std::vector<std::string> tokenizer_names() {
  std::vector<std::string> names;
  for (auto it = cases()["tokenizers"].begin(); it != cases()["tokenizers"].end(); ++it) names.push_back(it.key());
  return names;
}

std::unique_ptr<Tokenizer> load(const std::string& name) {
  return make_tokenizer(fixture_dir() + "/" + cases()["tokenizers"][name]["path"].get<std::string>());
}

// Printable form of a test string for failure messages.
std::string show(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7F) { char b[8]; std::snprintf(b, sizeof b, "\\x%02x", c); out += b; }
    else out += char(c);
  }
  return out.size() > 120 ? out.substr(0, 120) + "...\"" : out + "\"";
}

std::string show(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size() && i < 40; ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + (ids.size() > 40 ? ",...]" : "]");
}

std::vector<int32_t> ids_of(const json& j) { return j.get<std::vector<int32_t>>(); }

TEST(Tokenizer, FixtureHasEnoughCases) {
  EXPECT_GE(cases()["cases"].size(), 200u);
  EXPECT_GE(tokenizer_names().size(), 2u);
}

// The core check: encode() gives HF's ids (add_special_tokens=False) for every case and tokenizer, with
// and without special-token parsing; encode_with_bos() adds the template's tokens.
TEST(Tokenizer, IdsEqualHuggingFace) {
  for (const std::string& name : tokenizer_names()) {
    auto tok = load(name);
    std::vector<int32_t> prefix = ids_of(cases()["tokenizers"][name]["with_bos_prefix"]);
    int checked = 0, wrong = 0;
    for (const json& c : cases()["cases"]) {
      const std::string text = c["text"].get<std::string>();
      const json& e = c[name];
      std::vector<int32_t> want = ids_of(e["ids"]);
      std::vector<int32_t> want_plain = e.contains("ids_no_special") ? ids_of(e["ids_no_special"]) : want;
      std::vector<int32_t> got = tok->encode(text), got_plain = tok->encode(text, /*parse_special=*/false);
      std::vector<int32_t> want_bos = prefix;
      want_bos.insert(want_bos.end(), want.begin(), want.end());
      ++checked;
      if (got != want || got_plain != want_plain || tok->encode_with_bos(text) != want_bos) {
        if (++wrong <= 10)
          ADD_FAILURE() << name << " " << show(text) << "\n  HF:   " << show(want) << " / " << show(want_plain)
                        << "\n  ours: " << show(got) << " / " << show(got_plain);
      }
    }
    EXPECT_EQ(wrong, 0) << name << ": " << wrong << " of " << checked << " cases differ from HF";
  }
}

TEST(Tokenizer, DecodeEqualsHuggingFace) {
  for (const std::string& name : tokenizer_names()) {
    auto tok = load(name);
    for (const json& c : cases()["cases"]) {
      const std::string text = c["text"].get<std::string>();
      std::string want = c[name].contains("decoded") ? c[name]["decoded"].get<std::string>() : text;
      EXPECT_EQ(tok->decode(ids_of(c[name]["ids"])), want) << name << " " << show(text);
    }
    for (const json& d : cases()["decode_cases"][name]) {
      EXPECT_EQ(tok->decode(ids_of(d["ids"])), d["text"].get<std::string>()) << name << " " << show(ids_of(d["ids"]));
    }
  }
}

// decode(encode(x)) == x wherever the tokenizer does not add text (add_prefix_space does).
// input/ruler_bpe/tokenizer.json (input/ruler_bpe.deck's, made by tools/make_ruler_tokenizer.py with HF
// tokenizers): our ids equal HF's, BOS first, on one document of each RULER task and of copy practice,
// and decode gives HF's text back.
TEST(Tokenizer, RulerBpeEqualsHuggingFace) {
  std::ifstream in(fixture_dir() + "/ruler_bpe_cases.json");
  ASSERT_TRUE(in.good()) << "missing " << fixture_dir() << "/ruler_bpe_cases.json";
  const json j = json::parse(in);
  auto tok = make_tokenizer(test::source_dir() + "/input/ruler_bpe/tokenizer.json");
  EXPECT_EQ(tok->vocab_size(), 3072);
  EXPECT_EQ(tok->bos_id(), 0);
  EXPECT_EQ(tok->eos_id(), 1);
  ASSERT_EQ(j["cases"].size(), 12u);
  size_t chars = 0, tokens = 0;
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = tok->encode_with_bos(text);
    EXPECT_EQ(got, want) << text.substr(0, 120);
    EXPECT_EQ(tok->decode(got), c["decoded"].get<std::string>());
    chars += text.size();
    tokens += got.size();
  }
  EXPECT_GT(double(chars) / double(tokens), 3.0) << "characters per token over the tasks' text";
}

TEST(Tokenizer, RoundTrip) {
  for (const std::string name : {"llama3_style", "gpt2_style"}) {
    auto tok = load(name);
    for (const json& c : cases()["cases"]) {
      const std::string text = c["text"].get<std::string>();
      EXPECT_EQ(tok->decode(tok->encode(text)), text) << name << " " << show(text);
      EXPECT_EQ(tok->decode(tok->encode(text, false)), text) << name << " " << show(text);
    }
  }
}

TEST(Tokenizer, VocabularyAndSpecialTokens) {
  for (const std::string& name : tokenizer_names()) {
    auto tok = load(name);
    const json& info = cases()["tokenizers"][name];
    EXPECT_EQ(tok->vocab_size(), info["vocab_size"].get<int64_t>()) << name;
    EXPECT_EQ(tok->name(), fixture_dir() + "/" + info["path"].get<std::string>());
    for (auto it = info["token_ids"].begin(); it != info["token_ids"].end(); ++it) {
      int32_t want = it.value().is_null() ? -1 : it.value().get<int32_t>();
      EXPECT_EQ(tok->token_id(it.key()), want) << name << " " << it.key();
    }
  }
  auto llama = load("llama3_style");
  EXPECT_EQ(llama->bos_id(), llama->token_id("<|begin_of_text|>"));
  EXPECT_EQ(llama->eos_id(), llama->token_id("<|end_of_text|>"));
  EXPECT_GE(llama->bos_id(), 0);
  EXPECT_GE(llama->eos_id(), 0);
  std::vector<int32_t> ids = llama->encode("a<|eot_id|>b");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], llama->token_id("<|eot_id|>"));
  EXPECT_EQ(llama->encode("<|begin_of_text|>"), std::vector<int32_t>{llama->bos_id()});
  EXPECT_GT(llama->encode("<|begin_of_text|>", false).size(), 1u);
  auto gpt2 = load("gpt2_style");
  EXPECT_EQ(gpt2->bos_id(), -1);
  EXPECT_EQ(gpt2->eos_id(), gpt2->token_id("<|endoftext|>"));
  EXPECT_EQ(gpt2->encode_with_bos("hello"), gpt2->encode("hello"));  // no template: nothing added, as HF
}

// Python strings are always valid UTF-8, so HF cannot be asked about invalid bytes. Ours: each byte that
// is not part of a valid sequence is its own code point of class "other" and is byte-level encoded like
// any byte, so no input byte is lost; decode() turns invalid sequences into U+FFFD as HF would.
TEST(Tokenizer, InvalidUtf8) {
  const std::vector<std::string> inputs = {
      "\xff", "\xff\xfe", "abc\x80" "def", "\xe2\x82", "\xe2\x82 x", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
      "a\xff" "b c\xfe d", "'\xff", "\xff's", " \xff\xff\n", "12\x80" "34", "\xf0\x9f\x98", "caf\xc3", "\xc3\xa9\xc3",
      std::string("a\0b\xff", 4), "<|eot_id|>\xff<|eot_id|>", "\xe2\x82<|eot_id|>\xac"};
  for (const std::string& name : tokenizer_names()) {
    auto tok = load(name);
    auto* bpe = dynamic_cast<BpeTokenizer*>(tok.get());
    ASSERT_NE(bpe, nullptr);
    for (const std::string& in : inputs) {
      std::vector<int32_t> ids = tok->encode(in, /*parse_special=*/false);
      std::string bytes;
      for (int32_t id : ids) bytes += bpe->token_bytes(id);
      std::string want = name == "gpt2_prefix_space" && in[0] != ' ' ? " " + in : in;
      EXPECT_EQ(bytes, want) << name << " " << show(in);
      EXPECT_EQ(tok->decode(ids), utf8_lossy(want)) << name << " " << show(in);
      EXPECT_NO_THROW(tok->encode(in)) << name << " " << show(in);
    }
  }
  EXPECT_EQ(utf8_lossy("a\xe2\x82" "b"), "a\xEF\xBF\xBD" "b");        // one U+FFFD for a cut sequence
  EXPECT_EQ(utf8_lossy("\xc0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");       // overlong: two
  EXPECT_EQ(utf8_lossy("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate: three
}

TEST(Tokenizer, ByteTokenizer) {
  auto tok = make_tokenizer("bytes");
  EXPECT_EQ(tok->name(), "bytes");
  EXPECT_EQ(tok->vocab_size(), 258);
  EXPECT_EQ(tok->bos_id(), 256);
  EXPECT_EQ(tok->eos_id(), 257);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(char(b));
  std::vector<int32_t> ids = tok->encode(all);
  ASSERT_EQ(ids.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(ids[size_t(b)], b);
  EXPECT_EQ(tok->decode(ids), all);
  for (const json& c : cases()["cases"]) {
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(tok->decode(tok->encode(text)), text);
  }
  EXPECT_EQ(tok->encode("a<|end_of_text|>"), (std::vector<int32_t>{'a', 257}));
  EXPECT_EQ(tok->encode("<|end_of_text|>", false).size(), 15u);
  EXPECT_EQ(tok->encode_with_bos("hi"), (std::vector<int32_t>{256, 'h', 'i'}));
  EXPECT_EQ(tok->decode({256, 'x', 257}), "<|begin_of_text|>x<|end_of_text|>");
  EXPECT_EQ(tok->token_id("<|end_of_text|>"), 257);
  EXPECT_EQ(tok->token_id("A"), 'A');
  EXPECT_EQ(tok->token_id("AB"), -1);
  EXPECT_THROW(tok->decode({258}), InputError);
  EXPECT_THROW(tok->decode({-1}), InputError);
}

TEST(Tokenizer, DecodeRejectsUnknownIds) {
  auto tok = load("llama3_style");
  EXPECT_THROW(tok->decode({int32_t(tok->vocab_size())}), InputError);
  EXPECT_THROW(tok->decode({-5}), InputError);
}

// Generated ids from a model vocabulary larger than the tokenizer's print as U+FFFD and are
// counted (decode() threw after the whole generation was done).
TEST(Tokenizer, DecodeGeneratedMarksIdsTheTokenizerLacks) {
  auto bytes = make_tokenizer("bytes");
  int64_t unknown = -1;
  EXPECT_EQ(decode_generated(*bytes, {'H', 300, 'i', 258}, &unknown), "H\xEF\xBF\xBDi\xEF\xBF\xBD");
  EXPECT_EQ(unknown, 2);
  EXPECT_EQ(decode_generated(*bytes, {'o', 'k'}, &unknown), "ok");
  EXPECT_EQ(unknown, 0);
}

// The classes the pre-tokenizer relies on, including a Unicode 16 letter (Todhri) and the controls
// Python's str.isspace() calls spaces but Unicode White_Space (Oniguruma's \s) does not.
TEST(Tokenizer, UnicodeClasses) {
  EXPECT_EQ(cp_class('a'), CpClass::kLetter);
  EXPECT_EQ(cp_class(0x4E2D), CpClass::kLetter);   // 中
  EXPECT_EQ(cp_class(0x105C0), CpClass::kLetter);  // Todhri, new in Unicode 16
  EXPECT_EQ(cp_class('7'), CpClass::kNumber);
  EXPECT_EQ(cp_class(0x00BD), CpClass::kNumber);   // ½
  EXPECT_EQ(cp_class(0x0663), CpClass::kNumber);   // Arabic-Indic 3
  EXPECT_EQ(cp_class(' '), CpClass::kSpace);
  EXPECT_EQ(cp_class(0x85), CpClass::kSpace);
  EXPECT_EQ(cp_class(0x3000), CpClass::kSpace);
  EXPECT_EQ(cp_class(0x1C), CpClass::kOther);
  EXPECT_EQ(cp_class(0x180E), CpClass::kOther);    // left White_Space in Unicode 6.3
  EXPECT_EQ(cp_class(0x0301), CpClass::kOther);    // combining mark
  EXPECT_EQ(cp_class(0x1F600), CpClass::kOther);   // emoji
  EXPECT_EQ(cp_class(0x10FFFF), CpClass::kOther);
  EXPECT_EQ(cp_class(kInvalidCp), CpClass::kOther);
}

TEST(Tokenizer, PreTokenizerPieces) {
  std::vector<CodeUnit> units;
  auto split = [&](SplitPattern p, const std::string& s) {
    std::vector<std::string_view> pieces;
    split_by_pattern(p, s, &units, &pieces);
    return std::vector<std::string>(pieces.begin(), pieces.end());
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split(SplitPattern::kLlama3, "I'M  fine\r\n 1234567"), (V{"I", "'M", " ", " fine", "\r\n", " ", "123", "456", "7"}));
  EXPECT_EQ(split(SplitPattern::kLlama3, "x'\xc5\xbft"), (V{"x", "'\xc5\xbf", "t"}));  // 'ſ folds to 's
  EXPECT_EQ(split(SplitPattern::kGpt2, "I'M  fine\r\n 1234567"), (V{"I", "'", "M", " ", " fine", "\r\n", " 1234567"}));
  EXPECT_EQ(split(SplitPattern::kGpt2, "a  "), (V{"a", "  "}));
  EXPECT_TRUE(split(SplitPattern::kLlama3, "").empty());
}

// --- Errors: each names the file.

std::string write_file(const std::string& dir, const std::string& name, const std::string& content) {
  std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// The llama3 fixture with one change applied to its JSON.
std::string variant(const std::string& dir, const std::string& name, const std::function<void(json&)>& change) {
  std::ifstream in(fixture_dir() + "/llama3_style/tokenizer.json");
  json j = json::parse(in);
  change(j);
  return write_file(dir, name, j.dump());
}

void expect_input_error(const std::string& spec, const std::string& needle) {
  try {
    make_tokenizer(spec);
    ADD_FAILURE() << "no error for " << spec;
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(spec), std::string::npos) << "message lacks the path: " << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "message lacks '" << needle << "': " << msg;
    EXPECT_EQ(e.code(), kExitInput);
  }
}

TEST(Tokenizer, Errors) {
  std::string dir = test::scratch_dir("tokenizer_errors");
  expect_input_error(dir + "/no_such_tokenizer.json", "cannot open");
  expect_input_error(write_file(dir, "bad.json", "{\"model\": {\"type\": \"BPE\", "), "malformed JSON");
  expect_input_error(write_file(dir, "list.json", "[1, 2]"), "not a JSON object");
  expect_input_error(variant(dir, "wordpiece.json", [](json& j) { j["model"]["type"] = "WordPiece"; }),
                     "unsupported model type 'WordPiece'");
  expect_input_error(variant(dir, "nfc.json", [](json& j) { j["normalizer"] = {{"type", "NFC"}}; }),
                     "unsupported normalizer 'NFC'");
  expect_input_error(variant(dir, "meta.json", [](json& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}}; }),
                     "unsupported pre_tokenizer 'Metaspace'");
  expect_input_error(variant(dir, "regex.json",
                             [](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\w+"; }),
                     "unsupported split regex");
  expect_input_error(variant(dir, "merged.json",
                             [](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "MergedWithPrevious"; }),
                     "only Isolated");
  expect_input_error(variant(dir, "nobl.json", [](json& j) { j["pre_tokenizer"]["pretokenizers"].erase(1); }),
                     "no ByteLevel");
  expect_input_error(variant(dir, "dec.json", [](json& j) { j["decoder"] = {{"type", "WordPiece"}}; }),
                     "unsupported decoder 'WordPiece'");
  expect_input_error(variant(dir, "fallback.json", [](json& j) { j["model"]["byte_fallback"] = true; }),
                     "byte_fallback");
  expect_input_error(variant(dir, "dropout.json", [](json& j) { j["model"]["dropout"] = 0.1; }), "dropout");
  expect_input_error(variant(dir, "lstrip.json", [](json& j) { j["added_tokens"][0]["lstrip"] = true; }),
                     "added_tokens[0].lstrip");
  expect_input_error(variant(dir, "merge.json", [](json& j) { j["model"]["merges"][3] = {"q", "no-such-token"}; }),
                     "model.merges[3]");
  expect_input_error(variant(dir, "merge_str.json", [](json& j) { j["model"]["merges"][2] = "abc"; }),
                     "model.merges[2]");
  expect_input_error(variant(dir, "vocab.json", [](json& j) { j["model"]["vocab"]["Ġthe"] = "x"; }),
                     "model.vocab[\"Ġthe\"]");
  expect_input_error(variant(dir, "bytes.json", [](json& j) { j["model"]["vocab"].erase("Ġ"); }),
                     "lacks the byte-level token");
  expect_input_error(variant(dir, "trunc.json", [](json& j) { j["truncation"] = {{"max_length", 8}}; }),
                     "truncation");
  expect_input_error(variant(dir, "post.json", [](json& j) { j["post_processor"] = {{"type", "BertProcessing"}}; }),
                     "unsupported post_processor 'BertProcessing'");
  // An id far beyond the entries would size the id table in gigabytes (std::bad_alloc, exit 1).
  expect_input_error(variant(dir, "huge_added.json", [](json& j) { j["added_tokens"][0]["id"] = 2147483647; }),
                     "added_tokens: id 2147483647 is far beyond");
  expect_input_error(variant(dir, "huge_vocab.json", [](json& j) { j["model"]["vocab"]["Ġthe"] = 2000000000; }),
                     "model.vocab[\"Ġthe\"] = 2000000000 is far beyond");
}

// An HF model folder as data.tokenizer reads its tokenizer.json (it failed as 'malformed JSON').
TEST(Tokenizer, AFolderMeansItsTokenizerJson) {
  auto from_folder = make_tokenizer(fixture_dir() + "/llama3_style");
  auto from_file = make_tokenizer(fixture_dir() + "/llama3_style/tokenizer.json");
  EXPECT_EQ(from_folder->encode("Hello, long context!"), from_file->encode("Hello, long context!"));
  EXPECT_EQ(from_folder->vocab_size(), from_file->vocab_size());
}

// A tokenizer.json may leave id numbers unused: decode_generated marks those too (decode threw).
TEST(Tokenizer, DecodeGeneratedMarksUnusedIds) {
  const std::string dir = test::scratch_dir("tokenizer_holes");
  int32_t last = 0;
  const std::string path = variant(dir, "holes.json", [&](json& j) {
    last = j["added_tokens"].back()["id"].get<int32_t>() + 10;
    j["added_tokens"].back()["id"] = last;
  });
  auto tok = make_tokenizer(path);
  EXPECT_FALSE(tok->has_id(last - 1));
  EXPECT_TRUE(tok->has_id(last));
  int64_t unknown = 0;
  const std::string text = decode_generated(*tok, {last - 1}, &unknown);
  EXPECT_EQ(text, "\xEF\xBF\xBD");
  EXPECT_EQ(unknown, 1);
}

// Throughput: prints MB/s and tokens/s. Text: $LCT_TOKENIZER_BENCH_FILE if set (e.g. 10 MB), else ~2 MB
// made of the fixture's cases.
TEST(Tokenizer, Throughput) {
  std::string text;
  if (const char* f = std::getenv("LCT_TOKENIZER_BENCH_FILE")) {
    std::ifstream in(f, std::ios::binary);
    ASSERT_TRUE(in.good()) << f;
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  } else {
    uint32_t seed = 12345;
    const json& all = cases()["cases"];
    while (text.size() < (2u << 20)) {
      seed = seed * 1664525u + 1013904223u;
      text += all[(seed >> 8) % all.size()]["text"].get<std::string>();
      text += (seed & 1) ? " " : "\n";
    }
  }
  std::vector<std::string> names = tokenizer_names();
  if (const char* extra = std::getenv("LCT_TOKENIZER_BENCH_JSON")) names.push_back(extra);
  for (const std::string& name : names) {
    auto tok = name.find('/') == std::string::npos ? load(name) : make_tokenizer(name);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<int32_t> ids = tok->encode(text);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The same text as documents of ~4 KB (no word cache shared between calls).
    auto t1 = std::chrono::steady_clock::now();
    size_t n_doc_tokens = 0;
    for (size_t i = 0; i < text.size(); i += 4096) n_doc_tokens += tok->encode(text.substr(i, 4096)).size();
    double s_docs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    std::printf("[ tokenizer ] %-20s %.1f MB: %zu tokens, one call %.2f s = %.2f MB/s = %.0f tokens/s; "
                "4 KB calls %.2f MB/s\n",
                name.c_str(), text.size() / 1e6, ids.size(), s, text.size() / 1e6 / s, ids.size() / s,
                text.size() / 1e6 / s_docs);
    EXPECT_GT(ids.size(), text.size() / 20);
    EXPECT_GT(n_doc_tokens, 0u);
  }
}

}  // namespace
}  // namespace lct
