#include "train/run_identity.h"

#include <cstdio>
#include <map>
#include <sstream>

#include "core/error.h"
#include "train/resolve.h"

namespace lct {

const std::vector<std::string>& run_identity_keys() {
  static const std::vector<std::string> keys = {
      "run.seed",
      "model.vocab_size", "model.dim", "model.n_layers", "model.n_heads", "model.n_kv_heads", "model.head_dim",
      "model.ffn_dim", "model.norm_eps", "model.tie_embeddings", "model.init_from", "model.init_std",
      "rope.theta", "rope.scaling", "rope.factor", "rope.low_freq_factor", "rope.high_freq_factor",
      "rope.original_max_position_embeddings", "rope.beta_fast", "rope.beta_slow", "rope.attention_factor",
      "train.seq_len",
      "data.train", "data.format", "data.eod_token", "data.shuffle",
  };
  return keys;
}

RunIdentity run_identity(const Deck& deck, int stage) {
  const Deck d = resolve_run_stage(deck, stage);
  RunIdentity id;
  id.name = d.get("run.name");
  for (const std::string& k : run_identity_keys()) id.keys += k + " = " + d.get(k) + "\n";
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  for (unsigned char c : id.keys) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  id.hash = buf;
  return id;
}

namespace {

std::map<std::string, std::string> parse_lines(const std::string& text) {
  std::map<std::string, std::string> m;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find(" = ");
    if (eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 3);
  }
  return m;
}

}  // namespace

std::vector<std::string> identity_differences(const CheckpointHeader& ck, const RunIdentity& mine, const Deck& stage_deck,
                                              size_t max) {
  std::vector<std::string> out;
  if (ck.run_identity.empty() || ck.run_identity == mine.id()) return out;
  const std::string ck_name = ck.run_identity.substr(0, ck.run_identity.rfind(':'));
  if (ck_name != mine.name)
    out.push_back(str("run.name = '", ck_name, "' in the checkpoint, '", mine.name, "' in the deck (",
                      stage_deck.origin("run.name"), ")"));
  const auto theirs = parse_lines(ck.run_identity_keys), ours = parse_lines(mine.keys);
  size_t more = 0;
  for (const std::string& k : run_identity_keys()) {
    auto a = theirs.find(k), b = ours.find(k);
    const std::string va = a == theirs.end() ? "(not recorded)" : a->second;
    const std::string vb = b == ours.end() ? "" : b->second;
    if (va == vb) continue;
    if (out.size() >= max) {
      ++more;
      continue;
    }
    out.push_back(str(k, " = ", va.empty() ? "''" : va, " in the checkpoint, ", vb.empty() ? "''" : vb, " in the deck (",
                      stage_deck.origin(k), ")"));
  }
  if (more) out.push_back(str("and ", more, " more"));
  if (out.empty()) out.push_back("the recorded identity hashes differ");
  return out;
}

}  // namespace lct
