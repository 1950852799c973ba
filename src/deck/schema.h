// The ONE table of deck keys. Parsing, validation, --help, docs/deck.md, "did you mean" and the
// effective deck all come from it.
#pragma once

#include <limits>
#include <string>
#include <vector>

namespace lct {

enum class KeyType {
  Int,       // 64-bit integer
  Float,     // double
  Bool,      // true/false (also 1/0, yes/no, on/off)
  String,    // free text
  Path,      // a file or directory; relative paths are relative to the job's working directory
  Choice,    // one of `choices`
  List,      // comma-separated strings (e.g. data files or globs)
  IntList,   // comma-separated integers
  Number,    // an integer or float that may exceed 2^31 (rope.theta); kept exact when integral
  Auto,      // a non-negative integer or the word "auto"
  NumberOrAuto,  // a number or the word "auto"
};

struct KeySpec {
  std::string key;      // "section.name"
  KeyType type;
  std::string def;      // default value as written in a deck
  std::string doc;      // one line
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices;  // Choice only
};

const std::vector<KeySpec>& deck_schema();
// nullptr when the key is not in the schema.
const KeySpec* find_key(const std::string& key);
// The schema key closest to `key` by edit distance (for "did you mean"), or "" if nothing is close.
std::string closest_key(const std::string& key);
// Human-readable type and allowed range, e.g. "integer >= 1" or "one of cpu|cuda".
std::string describe_range(const KeySpec& spec);

}  // namespace lct
