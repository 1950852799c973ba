// Input decks (Boost.Program_options config-file syntax): `[section]` headers, `key = value`,
// dotted `section.key = value` lines, `#` comments (a `#` anywhere starts a comment, so values
// cannot contain one), `${VAR}` environment expansion in values, and command-line overrides
// `--section.key=value` after the deck path. `[stageN]` sections override any key for stage N.
//
// Every key is validated against the schema (deck/schema.h) when the deck is read: an unknown key,
// a bad value or a key given twice is an InputError naming the file, line, key and the fix. Every
// rank reads the same deck and reaches the same verdict, so these errors are collective.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lct {

class Deck {
 public:
  // The deck at `path` with command-line overrides ("--train.steps=10" or "--train.steps", "10").
  static Deck from_file(const std::string& path, const std::vector<std::string>& overrides = {});
  // A deck given as text (embedded defaults, tests); `name` stands for the file name in messages.
  static Deck from_text(const std::string& text, const std::string& name,
                        const std::vector<std::string>& overrides = {});
  // Every key at its default.
  static Deck defaults();

  // Typed access to validated values (all schema keys are present).
  const std::string& get(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  std::vector<std::string> get_list(const std::string& key) const;
  std::vector<int64_t> get_int_list(const std::string& key) const;
  bool is_auto(const std::string& key) const { return get(key) == "auto"; }

  // Where a value came from: "file:line", "command line", "stage N (file:line)", "default", or a
  // resolver's note.
  const std::string& origin(const std::string& key) const;
  bool given(const std::string& key) const;  // set by the deck or the command line, not a default

  // Sets a value (validated like a deck value); used by resolvers (theta = auto, init_from).
  void set(const std::string& key, const std::string& value, const std::string& origin);

  // Stages: [stage1], [stage2], ... (numbered from 1 without gaps). A deck without stage sections has
  // one stage equal to the base deck.
  int num_stages() const;
  // Base values with stage n's overrides applied (1-based); the result has no stages.
  Deck stage(int n) const;
  // Keys a stage overrides, with their values.
  std::map<std::string, std::string> stage_overrides(int n) const;

  // The effective deck: one `<prefix>section.key = value` line per key in schema order (a valid deck
  // that reproduces the run). Stage decks are printed by their callers with prefix "stageN.".
  std::string effective_text(const std::string& prefix = "") const;

 private:
  struct Entry {
    std::string value;
    std::string origin;
    bool given = false;
  };
  std::map<std::string, Entry> values_;
  std::map<int, std::map<std::string, Entry>> stages_;
  std::vector<std::string> stage_sections_;

  const Entry& entry(const std::string& key) const;
};

// Validates and normalises one value for `key` (after ${VAR} expansion); `where` prefixes messages.
std::string validate_value(const std::string& key, const std::string& raw, const std::string& where);
// Expands ${VAR} from the environment; an undefined variable is an InputError naming `where`.
std::string expand_env(const std::string& value, const std::string& where);
// Formats a double as a deck value: integers exactly (3580165449, never 3.58e+09), others with
// full precision.
std::string format_number(double x);

}  // namespace lct
