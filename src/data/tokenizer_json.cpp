#include "data/tokenizer_json.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace lct {
namespace {

using json = nlohmann::json;

// Error helper: every message names the file and the key.
struct Ctx {
  const std::string& path;
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw InputError(str("tokenizer '", path, "': ", key, ": ", what));
  }
};

// The "type" of a component, or its JSON kind when it has none.
std::string type_of(const json& j) {
  if (j.is_object() && j.contains("type") && j["type"].is_string()) return j["type"].get<std::string>();
  return j.type_name();
}

bool get_bool(const Ctx& c, const json& obj, const std::string& key, const std::string& where,
              bool dflt) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) c.fail(where + "." + key, str("expected true or false, found ", it->dump()));
  return it->get<bool>();
}

// A string field that must be null, absent or empty: a feature we do not implement.
void require_unset_string(const Ctx& c, const json& obj, const std::string& key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  if (it->is_string() && it->get<std::string>().empty()) return;
  c.fail(where + "." + key, str("is ", it->dump(), "; only null is supported"));
}

int32_t get_id(const Ctx& c, const json& v, const std::string& where) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
      v.get<int64_t>() > std::numeric_limits<int32_t>::max())
    c.fail(where, str("expected a token id (integer in [0, 2^31)), found ", v.dump()));
  return static_cast<int32_t>(v.get<int64_t>());
}

void read_model(const Ctx& c, const json& root, BpeSpec* spec) {
  if (!root.contains("model") || !root["model"].is_object()) c.fail("model", "missing or not an object");
  const json& m = root["model"];
  std::string type = m.contains("type") && m["type"].is_string() ? m["type"].get<std::string>() : "";
  if (type.empty() && m.contains("merges")) type = "BPE";  // old files leave the type out
  if (type != "BPE")
    c.fail("model.type", str("unsupported model type '", type.empty() ? m.dump().substr(0, 40) : type,
                             "'; only byte-level BPE (Llama-3, GPT-2 style) is supported"));
  if (m.contains("dropout") && !m["dropout"].is_null() &&
      !(m["dropout"].is_number() && m["dropout"].get<double>() == 0.0))
    c.fail("model.dropout", "BPE dropout is not supported (it makes encoding random); set it to null");
  require_unset_string(c, m, "continuing_subword_prefix", "model");
  require_unset_string(c, m, "end_of_word_suffix", "model");
  if (get_bool(c, m, "byte_fallback", "model", false))
    c.fail("model.byte_fallback", "byte_fallback (SentencePiece-style <0xNN> tokens) is not supported");
  spec->ignore_merges = get_bool(c, m, "ignore_merges", "model", false);
  spec->fuse_unk = get_bool(c, m, "fuse_unk", "model", false);
  if (m.contains("unk_token") && !m["unk_token"].is_null()) {
    if (!m["unk_token"].is_string()) c.fail("model.unk_token", "expected a string or null");
    spec->unk_token = m["unk_token"].get<std::string>();
  }

  if (!m.contains("vocab") || !m["vocab"].is_object()) c.fail("model.vocab", "missing or not an object");
  spec->vocab.reserve(m["vocab"].size());
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it)
    spec->vocab.emplace_back(it.key(), get_id(c, it.value(), "model.vocab[\"" + it.key() + "\"]"));

  if (!m.contains("merges") || !m["merges"].is_array()) c.fail("model.merges", "missing or not an array");
  const json& merges = m["merges"];
  spec->merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& e = merges[i];
    std::string where = str("model.merges[", i, "]");
    if (e.is_string()) {  // "a b"
      const std::string s = e.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
        c.fail(where, str("expected \"left right\" with exactly one space, found ", e.dump()));
      spec->merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {  // ["a", "b"]
      spec->merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      c.fail(where, str("expected \"left right\" or [\"left\", \"right\"], found ", e.dump()));
    }
  }
}

void read_added_tokens(const Ctx& c, const json& root, BpeSpec* spec) {
  if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return;
  const json& arr = root["added_tokens"];
  if (!arr.is_array()) c.fail("added_tokens", "expected an array");
  for (size_t i = 0; i < arr.size(); ++i) {
    const json& t = arr[i];
    std::string where = str("added_tokens[", i, "]");
    if (!t.is_object() || !t.contains("id") || !t.contains("content") || !t["content"].is_string())
      c.fail(where, "expected an object with \"id\" and \"content\"");
    AddedTokenSpec a;
    a.id = get_id(c, t["id"], where + ".id");
    a.content = t["content"].get<std::string>();
    if (a.content.empty()) c.fail(where + ".content", "is empty");
    a.special = get_bool(c, t, "special", where, false);
    a.normalized = get_bool(c, t, "normalized", where, !a.special);
    for (const char* flag : {"single_word", "lstrip", "rstrip"}) {
      if (get_bool(c, t, flag, where, false))
        c.fail(str(where, ".", flag), str("is true for '", a.content, "'; only false is supported"));
    }
    spec->added.push_back(a);
  }
}

void read_byte_level(const Ctx& c, const json& p, const std::string& where, BpeSpec* spec) {
  spec->pretok.add_prefix_space = get_bool(c, p, "add_prefix_space", where, true);
  spec->pretok.use_regex = get_bool(c, p, "use_regex", where, true);
}

void read_split(const Ctx& c, const json& p, const std::string& where, BpeSpec* spec) {
  if (!p.contains("pattern") || !p["pattern"].is_object() || !p["pattern"].contains("Regex") ||
      !p["pattern"]["Regex"].is_string())
    c.fail(where + ".pattern", "only {\"Regex\": ...} patterns are supported");
  std::string re = p["pattern"]["Regex"].get<std::string>();
  if (re == kLlama3Pattern) {
    spec->pretok.splits.push_back(SplitPattern::kLlama3);
  } else if (re == kGpt2Pattern) {
    spec->pretok.splits.push_back(SplitPattern::kGpt2);
  } else {
    c.fail(where + ".pattern.Regex",
           str("unsupported split regex ", p["pattern"]["Regex"].dump(),
               "; supported: the Llama-3 pattern and the GPT-2 pattern (docs/tokenizer.md)"));
  }
  std::string behavior = p.contains("behavior") && p["behavior"].is_string() ? p["behavior"].get<std::string>() : "";
  if (behavior != "Isolated") c.fail(where + ".behavior", str("is '", behavior, "'; only Isolated is supported"));
  if (get_bool(c, p, "invert", where, false)) c.fail(where + ".invert", "only false is supported");
}

void read_pre_tokenizer(const Ctx& c, const json& root, BpeSpec* spec) {
  const json* pt = root.contains("pre_tokenizer") ? &root["pre_tokenizer"] : nullptr;
  if (pt == nullptr || pt->is_null())
    c.fail("pre_tokenizer", "is null; a byte-level BPE needs a ByteLevel pre_tokenizer");
  // Flatten Sequences into a list of steps.
  std::vector<std::pair<const json*, std::string>> steps;
  std::vector<std::pair<const json*, std::string>> todo{{pt, "pre_tokenizer"}};
  while (!todo.empty()) {
    auto [p, where] = todo.front();
    todo.erase(todo.begin());
    if (type_of(*p) == "Sequence") {
      if (!p->contains("pretokenizers") || !(*p)["pretokenizers"].is_array())
        c.fail(where + ".pretokenizers", "missing or not an array");
      std::vector<std::pair<const json*, std::string>> inner;
      for (size_t i = 0; i < (*p)["pretokenizers"].size(); ++i)
        inner.emplace_back(&(*p)["pretokenizers"][i], str(where, ".pretokenizers[", i, "]"));
      todo.insert(todo.begin(), inner.begin(), inner.end());
    } else {
      steps.emplace_back(p, where);
    }
  }
  bool byte_level = false;
  for (auto& [p, where] : steps) {
    std::string type = type_of(*p);
    if (byte_level) c.fail(where, str("a '", type, "' step after ByteLevel is not supported"));
    if (type == "Split") {
      read_split(c, *p, where, spec);
    } else if (type == "ByteLevel") {
      read_byte_level(c, *p, where, spec);
      byte_level = true;
    } else {
      c.fail(where + ".type", str("unsupported pre_tokenizer '", type, "'; supported: Split (Isolated, "
                                  "Llama-3 or GPT-2 regex) and ByteLevel, alone or in a Sequence"));
    }
  }
  if (!byte_level) c.fail("pre_tokenizer", "has no ByteLevel step; only byte-level BPE is supported");
}

// post_processor: null, ByteLevel (offsets only), TemplateProcessing, or a Sequence of these.
void read_post_processor(const Ctx& c, const json& p, const std::string& where, BpeSpec* spec) {
  if (p.is_null()) return;
  std::string type = type_of(p);
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    if (!p.contains("processors") || !p["processors"].is_array())
      c.fail(where + ".processors", "missing or not an array");
    for (size_t i = 0; i < p["processors"].size(); ++i)
      read_post_processor(c, p["processors"][i], str(where, ".processors[", i, "]"), spec);
    return;
  }
  if (type != "TemplateProcessing")
    c.fail(where + ".type", str("unsupported post_processor '", type, "'; supported: TemplateProcessing, "
                                "ByteLevel, Sequence"));
  if (spec->has_template) c.fail(where, "a second TemplateProcessing is not supported");
  spec->has_template = true;
  if (!p.contains("single") || !p["single"].is_array()) c.fail(where + ".single", "missing or not an array");
  const json& specials = p.contains("special_tokens") ? p["special_tokens"] : json::object();
  bool seen_a = false;
  for (size_t i = 0; i < p["single"].size(); ++i) {
    const json& piece = p["single"][i];
    std::string pw = str(where, ".single[", i, "]");
    if (piece.contains("Sequence")) {
      const json& s = piece["Sequence"];
      if (!s.contains("id") || s["id"] != "A" || seen_a) c.fail(pw, "only one {\"Sequence\": {\"id\": \"A\"}} is supported");
      seen_a = true;
    } else if (piece.contains("SpecialToken") && piece["SpecialToken"].contains("id") &&
               piece["SpecialToken"]["id"].is_string()) {
      std::string name = piece["SpecialToken"]["id"].get<std::string>();
      if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array())
        c.fail(where + ".special_tokens", str("has no ids for '", name, "'"));
      for (const json& id : specials[name]["ids"]) {
        int32_t v = get_id(c, id, str(where, ".special_tokens[\"", name, "\"].ids"));
        (seen_a ? spec->template_suffix : spec->template_prefix).push_back(v);
      }
    } else {
      c.fail(pw, str("unsupported template piece ", piece.dump()));
    }
  }
  if (!seen_a) c.fail(where + ".single", "has no {\"Sequence\": {\"id\": \"A\"}}");
}

void read_decoder(const Ctx& c, const json& root) {
  const json* d = root.contains("decoder") ? &root["decoder"] : nullptr;
  if (d == nullptr || d->is_null()) c.fail("decoder", "is null; a byte-level BPE needs the ByteLevel decoder");
  if (type_of(*d) != "ByteLevel")
    c.fail("decoder.type", str("unsupported decoder '", type_of(*d), "'; only ByteLevel is supported"));
}

}  // namespace

BpeSpec read_tokenizer_json(const std::string& spec_path) {
  // An HF model folder names its tokenizer.json (as config.json is found in a folder).
  std::error_code ec;
  const std::string path = std::filesystem::is_directory(spec_path, ec)
                               ? (std::filesystem::path(spec_path) / "tokenizer.json").string()
                               : spec_path;
  Ctx c{path};
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw InputError(str("tokenizer '", path, "': cannot open (", std::strerror(errno),
                         "); give 'bytes' or the path of a Hugging Face tokenizer.json"));
  std::stringstream buf;
  buf << in.rdbuf();
  json root;
  try {
    root = json::parse(buf.str());
  } catch (const json::parse_error& e) {
    throw InputError(str("tokenizer '", path, "': malformed JSON at byte ", e.byte, ": ", e.what()));
  }
  if (!root.is_object()) throw InputError(str("tokenizer '", path, "': the top level is not a JSON object"));

  BpeSpec spec;
  spec.path = path;
  try {
    if (root.contains("normalizer") && !root["normalizer"].is_null())
      c.fail("normalizer.type", str("unsupported normalizer '", type_of(root["normalizer"]),
                                    "'; only null is supported (Llama-3 and GPT-2 have none)"));
    for (const char* key : {"truncation", "padding"}) {
      if (root.contains(key) && !root[key].is_null())
        c.fail(key, "is set; lctrain packs documents itself, set it to null in the file");
    }
    read_model(c, root, &spec);
    read_added_tokens(c, root, &spec);
    read_pre_tokenizer(c, root, &spec);
    if (root.contains("post_processor")) read_post_processor(c, root["post_processor"], "post_processor", &spec);
    read_decoder(c, root);
  } catch (const json::exception& e) {  // a field of an unexpected JSON type deep inside
    throw InputError(str("tokenizer '", path, "': unexpected content: ", e.what()));
  }
  return spec;
}

}  // namespace lct
