#include "deck/deck.h"

#include <boost/program_options.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "deck/schema.h"

namespace lct {
namespace po = boost::program_options;

namespace {

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

struct RawItem {
  std::string key, value;
  std::string origin;  // "file:line" or "command line"
};

// Locates each `key = value` line as Boost's config-file parser reads it ('#' starts a comment,
// `[section]` prefixes names), so messages can name the line. Syntax errors are reported here.
std::vector<RawItem> scan_lines(const std::string& text, const std::string& name) {
  std::vector<RawItem> items;
  std::istringstream is(text);
  std::string line, prefix;
  int lineno = 0;
  while (std::getline(is, line)) {
    ++lineno;
    std::string s = line;
    if (size_t h = s.find('#'); h != std::string::npos) s = s.substr(0, h);
    s = trim(s);
    if (s.empty()) continue;
    const std::string where = str(name, ":", lineno);
    if (s.front() == '[') {
      if (s.back() != ']' || s.size() < 3)
        throw InputError(str(where, ": malformed section header '", s, "' (write [section])"));
      prefix = s.substr(1, s.size() - 2);
      if (prefix != trim(prefix) || prefix.empty())
        throw InputError(str(where, ": section header '", s, "' has spaces inside the brackets or no name (write [",
                             trim(prefix).empty() ? std::string("section") : trim(prefix), "])"));
      if (!prefix.empty() && prefix.back() != '.') prefix += '.';
      continue;
    }
    size_t eq = s.find('=');
    if (eq == std::string::npos)
      throw InputError(str(where, ": expected 'key = value', found '", s, "'"));
    std::string key = trim(s.substr(0, eq));
    if (key.empty()) throw InputError(str(where, ": a value without a key: '", s, "'"));
    items.push_back({prefix + key, trim(s.substr(eq + 1)), where});
  }
  return items;
}

// The values as Boost.Program_options reads them; checked against the line scan.
std::vector<std::pair<std::string, std::string>> boost_parse(const std::string& text, const std::string& name) {
  std::istringstream is(text);
  po::options_description none;
  std::vector<std::pair<std::string, std::string>> out;
  try {
    po::parsed_options parsed = po::parse_config_file(is, none, /*allow_unregistered=*/true);
    for (const auto& opt : parsed.options)
      out.emplace_back(opt.string_key, opt.value.empty() ? std::string() : opt.value.front());
  } catch (const po::error& e) {
    throw InputError(str(name, ": not a valid deck: ", e.what()));
  }
  return out;
}

bool parse_int(const std::string& s, long long& v) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  v = std::strtoll(s.c_str(), &end, 10);
  return errno == 0 && end && *end == '\0';
}

bool parse_double(const std::string& s, double& v) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return errno == 0 && end && *end == '\0' && std::isfinite(v);
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream is(s);
  while (std::getline(is, cur, ',')) {
    cur = trim(cur);
    if (!cur.empty()) out.push_back(cur);
  }
  return out;
}

bool is_stage_key(const std::string& key, int& stage, std::string& rest) {
  if (key.rfind("stage", 0) != 0) return false;
  size_t dot = key.find('.');
  if (dot == std::string::npos || dot == 5 || key[5] == '0') return false;  // [stage01] is no alias of [stage1]
  long long n = 0;
  if (!parse_int(key.substr(5, dot - 5), n) || n < 1 || n > 1000) return false;
  stage = int(n);
  rest = key.substr(dot + 1);
  return true;
}

[[noreturn]] void unknown_key(const std::string& key, const std::string& where) {
  std::string hint = closest_key(key);
  throw InputError(str(where, ": unknown key '", key, "'",
                       hint.empty() ? std::string(" (lctrain --help lists every key)") : str(" (did you mean ", hint, "?)")));
}

// "--a.b=c" / "--a.b c" pairs from the command line.
std::vector<RawItem> parse_overrides(const std::vector<std::string>& args) {
  std::vector<RawItem> items;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0)
      throw InputError(str("command line: unexpected argument '", a, "' (overrides look like --train.steps=10)"));
    std::string body = a.substr(2);
    size_t eq = body.find('=');
    if (eq != std::string::npos) {
      items.push_back({trim(body.substr(0, eq)), trim(body.substr(eq + 1)), "command line"});
    } else {
      if (i + 1 >= args.size())
        throw InputError(str("command line: override '", a, "' has no value (write --", body, "=VALUE)"));
      items.push_back({body, trim(args[++i]), "command line"});
    }
  }
  return items;
}

}  // namespace

std::string format_number(double x) {
  char buf[64];
  if (std::fabs(x) < 9.2e18 && x == std::floor(x))
    std::snprintf(buf, sizeof buf, "%lld", (long long)x);
  else
    for (int prec = 6; prec <= 17; ++prec) {  // the shortest form that reads back exactly
      std::snprintf(buf, sizeof buf, "%.*g", prec, x);
      if (std::strtod(buf, nullptr) == x) break;
    }
  return buf;
}

std::string expand_env(const std::string& value, const std::string& where) {
  std::string out;
  for (size_t i = 0; i < value.size();) {
    if (value[i] == '$' && i + 1 < value.size() && value[i + 1] == '{') {
      size_t close = value.find('}', i + 2);
      if (close == std::string::npos)
        throw InputError(str(where, ": unterminated ${...} in '", value, "'"));
      std::string var = value.substr(i + 2, close - i - 2);
      const char* v = std::getenv(var.c_str());
      if (!v)
        throw InputError(str(where, ": environment variable ", var, " is not set (used in '", value,
                             "'); export it or write the value directly"));
      out += v;
      i = close + 1;
    } else {
      out += value[i++];
    }
  }
  return out;
}

std::string validate_value(const std::string& key, const std::string& raw, const std::string& where) {
  const KeySpec* spec = find_key(key);
  if (!spec) unknown_key(key, where);
  const std::string v = trim(expand_env(raw, where));
  auto bad = [&](const std::string& why) -> std::string {
    throw InputError(str(where, ": ", key, " = '", v, "' is not valid: ", why.empty() ? "expected " + describe_range(*spec) : why));
  };
  auto in_range = [&](double x) {
    if (x < spec->min || x > spec->max) bad(str("expected ", describe_range(*spec)));
  };
  switch (spec->type) {
    case KeyType::Int: {
      long long x;
      if (!parse_int(v, x)) bad("");
      in_range(double(x));
      return std::to_string(x);
    }
    case KeyType::Float: {
      double x;
      if (!parse_double(v, x)) bad("");
      in_range(x);
      return format_number(x);
    }
    case KeyType::Number: {
      double x;
      if (!parse_double(v, x)) bad("");
      in_range(x);
      return format_number(x);
    }
    case KeyType::NumberOrAuto: {
      if (v == "auto") return v;
      double x;
      if (!parse_double(v, x)) bad("");
      in_range(x);
      return format_number(x);
    }
    case KeyType::Auto: {
      if (v == "auto") return v;
      long long x;
      if (!parse_int(v, x)) bad("");
      in_range(double(x));
      return std::to_string(x);
    }
    case KeyType::Bool: {
      if (v == "true" || v == "1" || v == "yes" || v == "on") return "true";
      if (v == "false" || v == "0" || v == "no" || v == "off") return "false";
      return bad("");
    }
    case KeyType::Choice: {
      for (const auto& c : spec->choices)
        if (v == c) return v;
      return bad("");
    }
    case KeyType::IntList: {
      std::string norm;
      for (const auto& item : split_list(v)) {
        long long x;
        if (!parse_int(item, x)) bad(str("'", item, "' is not an integer (expected ", describe_range(*spec), ")"));
        in_range(double(x));
        norm += (norm.empty() ? "" : ",") + std::to_string(x);
      }
      return norm;
    }
    case KeyType::List: {
      std::string norm;
      for (const auto& item : split_list(v)) norm += (norm.empty() ? "" : ",") + item;
      return norm;
    }
    case KeyType::String:
    case KeyType::Path: return v;
  }
  return v;
}

Deck Deck::defaults() {
  Deck d;
  for (const auto& spec : deck_schema())
    d.values_[spec.key] = Entry{validate_value(spec.key, spec.def, "schema default"), "default", false};
  return d;
}

Deck Deck::from_file(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(str("deck file '", path, "' is a directory; give the deck's file (e.g. input/tiny.deck)"));
  std::ifstream f(path);
  if (!f)
    throw InputError(str("cannot read deck file '", path, "': ", std::strerror(errno),
                         " (paths are relative to the job's working directory)"));
  std::stringstream ss;
  ss << f.rdbuf();
  return from_text(ss.str(), path, overrides);
}

Deck Deck::from_text(const std::string& raw_text, const std::string& name, const std::vector<std::string>& overrides) {
  // A UTF-8 byte-order mark (some editors write one) is not part of the first line.
  const std::string text = raw_text.rfind("\xEF\xBB\xBF", 0) == 0 ? raw_text.substr(3) : raw_text;
  Deck d = defaults();
  std::vector<RawItem> items = scan_lines(text, name);
  // Boost is the reference parser of the syntax; our scan only adds line numbers.
  auto parsed = boost_parse(text, name);
  LCT_CHECK(parsed.size() == items.size(), "deck scan and Boost disagree on ", name);
  for (size_t i = 0; i < items.size(); ++i) {
    LCT_CHECK(parsed[i].first == items[i].key, "deck scan and Boost disagree at ", items[i].origin);
    items[i].value = parsed[i].second;
  }
  for (auto& o : parse_overrides(overrides)) items.push_back(o);

  std::map<std::string, std::string> seen;  // key -> origin, to reject a key given twice in the file
  std::set<std::string> cli_keys;  // keys the command line sets for every stage
  for (const auto& it : items) {
    int stage = 0;
    std::string rest;
    const bool from_cli = it.origin == "command line";
    if (!from_cli) {
      auto prev = seen.find(it.key);
      if (prev != seen.end())
        throw InputError(str(it.origin, ": ", it.key, " is given twice (first at ", prev->second,
                             "); keep one of them"));
      seen[it.key] = it.origin;
    }
    if (is_stage_key(it.key, stage, rest)) {
      if (!find_key(rest)) unknown_key(rest, it.origin + " (in [stage" + std::to_string(stage) + "])");
      std::string v = validate_value(rest, it.value, it.origin);
      d.stages_[stage][rest] = Entry{v, str("stage ", stage, " (", it.origin, ")"), true};
      continue;
    }
    if (!find_key(it.key)) unknown_key(it.key, it.origin);
    d.values_[it.key] = Entry{validate_value(it.key, it.value, it.origin), it.origin, true};
    if (from_cli) cli_keys.insert(it.key);
  }
  // The command line wins over the whole deck: a deck's [stageN] value of a key given on the command
  // line gives way to it (--stageN.key=VALUE, whose origin names the command line, sets one stage).
  for (auto& st : d.stages_)
    for (const std::string& k : cli_keys) {
      auto e = st.second.find(k);
      if (e != st.second.end() && e->second.origin != str("stage ", st.first, " (command line)")) st.second.erase(e);
    }
  int expect = 1;
  for (const auto& kv : d.stages_) {
    if (kv.first != expect)
      throw InputError(str(name, ": stage sections must be numbered 1, 2, 3, ... without gaps; found [stage",
                           kv.first, "] but no [stage", expect, "]"));
    ++expect;
  }
  return d;
}

const Deck::Entry& Deck::entry(const std::string& key) const {
  auto it = values_.find(key);
  LCT_CHECK(it != values_.end(), "deck key not in the schema: ", key);
  return it->second;
}

const std::string& Deck::get(const std::string& key) const { return entry(key).value; }
const std::string& Deck::origin(const std::string& key) const { return entry(key).origin; }
bool Deck::given(const std::string& key) const { return entry(key).given; }

int64_t Deck::get_int(const std::string& key) const {
  long long v = 0;
  LCT_CHECK(parse_int(get(key), v), key, " is not an integer: ", get(key));
  return v;
}
double Deck::get_float(const std::string& key) const {
  double v = 0;
  LCT_CHECK(parse_double(get(key), v), key, " is not a number: ", get(key));
  return v;
}
bool Deck::get_bool(const std::string& key) const { return get(key) == "true"; }
std::vector<std::string> Deck::get_list(const std::string& key) const { return split_list(get(key)); }
std::vector<int64_t> Deck::get_int_list(const std::string& key) const {
  std::vector<int64_t> out;
  for (const auto& s : split_list(get(key))) {
    long long v = 0;
    LCT_CHECK(parse_int(s, v), key, " item is not an integer: ", s);
    out.push_back(v);
  }
  return out;
}

void Deck::set(const std::string& key, const std::string& value, const std::string& origin) {
  values_[key] = Entry{validate_value(key, value, origin), origin, true};
}

int Deck::num_stages() const { return stages_.empty() ? 1 : int(stages_.size()); }

Deck Deck::stage(int n) const {
  LCT_CHECK(n >= 1 && n <= num_stages(), "stage ", n, " of ", num_stages());
  Deck d;
  d.values_ = values_;
  auto it = stages_.find(n);
  if (it != stages_.end())
    for (const auto& kv : it->second) d.values_[kv.first] = kv.second;
  return d;
}

std::map<std::string, std::string> Deck::stage_overrides(int n) const {
  std::map<std::string, std::string> out;
  auto it = stages_.find(n);
  if (it != stages_.end())
    for (const auto& kv : it->second) out[kv.first] = kv.second.value;
  return out;
}

std::string Deck::effective_text(const std::string& prefix) const {
  std::ostringstream os;
  for (const auto& spec : deck_schema()) os << prefix << spec.key << " = " << get(spec.key) << "\n";
  return os.str();
}

}  // namespace lct
