#include "train/validate.h"

#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "core/error.h"
#include "data/blend.h"
#include "data/data_files.h"
#include "deck/config.h"
#include "parallel/planner.h"
#include "train/resolve.h"

namespace lct {
namespace fs = std::filesystem;

namespace {

std::string step_file(const std::string& out_dir, int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld.h5", (long long)step);
  return out_dir + "/checkpoints/" + buf;
}

// The stage (< before) of `deck` whose checkpoints include `path`, 0 if none.
int created_by_stage(const Deck& deck, int before, const std::string& path) {
  const fs::path want = fs::path(path).lexically_normal();
  int64_t base = 0;
  for (int s = 1; s < before; ++s) {
    const Deck d = deck.stage(s);
    const int64_t steps = d.get_int("train.steps"), every = d.get_int("checkpoint.every");
    const std::string out = d.get("run.out_dir");
    std::vector<int64_t> made = {base + steps};
    if (every > 0)
      for (int64_t k = (base / every + 1) * every; k <= base + steps; k += every) made.push_back(k);
    for (int64_t step : made)
      if (fs::path(step_file(out, step)).lexically_normal() == want) return s;
    base += steps;
  }
  return 0;
}

}  // namespace

std::string missing_start_path(const Deck& d, const std::string& key) {
  const std::string p = d.get(key);
  std::error_code ec;
  if (p.empty() || fs::exists(p, ec)) return "";
  if (key == "model.init_from")
    return str("model.init_from = ", p, " (", d.origin(key),
               "): no such file or directory; give a Hugging Face model directory (config.json + *.safetensors) or "
               "an lctrain checkpoint (.h5), or leave it empty for random weights");
  return str(key, " = ", p, " (", d.origin(key),
             "): no such checkpoint; give an existing checkpoint file, auto (the newest in run.out_dir) or none");
}

void check_stage_layout(const Deck& stage_deck, const Topology* topology) {
  const Config c = config_from_deck(stage_deck);
  local_shape(c, c.parallel.tp, c.parallel.cp);  // the checks of ParamTable::build and Llama
  check_cp_heads(c.model.n_heads, c.model.n_kv_heads, c.parallel.tp, c.parallel.cp_a2a);
  if (!topology) return;
  Topology t = *topology;
  if (c.parallel.ranks_per_node > 0) {
    if (t.world_size % c.parallel.ranks_per_node != 0)
      throw InputError(str("parallel.ranks_per_node = ", c.parallel.ranks_per_node, " does not divide the world size ",
                           t.world_size, "; use a divisor of ", t.world_size, " or 0 to detect nodes"));
    t = make_topology(t.world_size, c.parallel.ranks_per_node, c.parallel.rail_map);
  } else if (!c.parallel.rail_map.empty()) {
    t = topology_from_nodes(t.node_of, c.parallel.rail_map);
  }
  make_layout(t, c.parallel.tp, c.parallel.cp, c.parallel.dp, c.parallel.ring_aware, c.parallel.cp_a2a);
}

void check_stage_data(const Deck& d) {
  const Config c = config_from_deck(d);
  if (c.data.train.empty())
    throw InputError(str("data.train is empty (", d.origin("data.train"),
                         "): give token files, globs or directories (docs/data.md), e.g. made with bin/lcdata"));
  for (const BlendPart& part : parse_blend(c.data.train, "data.train")) expand_data_paths(part.paths, c.data.format);
  if (!c.data.valid.empty()) {
    try {
      for (const BlendPart& part : parse_blend(c.data.valid, "data.valid")) expand_data_paths(part.paths, c.data.format);
    } catch (const InputError& e) {
      std::string m = e.what();
      const std::string from = "[data] train";
      if (m.rfind(from, 0) == 0) m = "[data] valid" + m.substr(from.size());
      throw InputError(m);
    }
  }
}

ValidateReport validate_run(const Deck& deck, const ValidateOptions& opt) {
  ValidateReport rep;
  const int n = deck.num_stages();
  if (opt.only_stage > n) throw InputError(str("--stage ", opt.only_stage, " but the deck defines ", n, " stage(s)"));
  const int first = opt.only_stage > 0 ? opt.only_stage : 1, last = opt.only_stage > 0 ? opt.only_stage : n;
  const Deck base = resolve_run_stage(deck, 1);
  const std::string out_dir = base.get("run.out_dir");
  for (int s = 2; s <= n; ++s)
    if (deck.stage(s).get("run.out_dir") != out_dir)
      throw InputError(str("run.out_dir must be the same in every stage (stage ", s, " sets '",
                           deck.stage(s).get("run.out_dir"), "', the base '", out_dir, "')"));
  Topology topo;
  const Topology* tp = opt.topology;
  if (!tp && opt.world_size > 0) {
    if (opt.ranks_per_node > 0 && opt.world_size % opt.ranks_per_node != 0)
      throw InputError(str("--ranks-per-node ", opt.ranks_per_node, " does not divide --world-size ", opt.world_size,
                           "; give the ranks of one node, a divisor of ", opt.world_size));
    topo = make_topology(opt.world_size, opt.ranks_per_node > 0 ? opt.ranks_per_node : opt.world_size);
    tp = &topo;
  }
  for (int s = first; s <= last; ++s) {
    const Deck d = resolve_run_stage(deck, s);
    if (d.get_bool("checkpoint.override_lr_schedule") && d.get_bool("checkpoint.use_checkpoint_lr_schedule"))
      throw InputError(str("checkpoint.override_lr_schedule (", d.origin("checkpoint.override_lr_schedule"),
                           ") and checkpoint.use_checkpoint_lr_schedule (",
                           d.origin("checkpoint.use_checkpoint_lr_schedule"),
                           ") are both true: on resume the LR schedule comes either from the deck or from the "
                           "checkpoint; set one of them"));
    try {
      check_stage_layout(d, tp);  // a stage's parallel.ranks_per_node wins, as in training
      check_stage_data(d);
    } catch (const InputError& e) {
      throw InputError(n > 1 ? str("stage ", s, ": ", e.what()) : std::string(e.what()));
    }
    if (!opt.check_start_paths) continue;
    // The paths a run starts from: checkpoint.resume = <path> (read once, from the first stage run)
    // and model.init_from of that stage; later stages start from the previous stage's checkpoint.
    std::vector<std::string> keys;
    if (s == first) {
      const std::string r = d.get("checkpoint.resume");
      if (r != "auto" && r != "none") keys.push_back("checkpoint.resume");
      keys.push_back("model.init_from");
    } else if (!d.get("model.init_from").empty() && d.given("model.init_from")) {
      keys.push_back("model.init_from");
    }
    for (const std::string& key : keys) {
      const std::string msg = missing_start_path(d, key);
      if (msg.empty()) continue;
      const std::string p = d.get(key);
      if (const int k = created_by_stage(deck, s, p)) {
        rep.notes.push_back(str("stage ", s, " ", key, " = ", p, " does not exist yet: stage ", k,
                                " of this deck writes it"));
      } else if (s != first) {
        rep.notes.push_back(str("stage ", s, " ", key, " = ", p,
                                " does not exist; unused when the stages run in order (stage ", s,
                                " starts from stage ", s - 1, "'s final checkpoint)"));
      } else {
        throw InputError(msg);
      }
    }
  }
  std::ostringstream sum;
  sum << (last - first + 1) << " stage(s) checked: model shape, data files";
  if (opt.check_start_paths) sum << ", start paths";
  if (tp) {
    // A deck's parallel.ranks_per_node wins over the node shape, as in training: say which was checked.
    const int64_t deck_rpn = resolve_run_stage(deck, first).get_int("parallel.ranks_per_node");
    sum << ", layout for " << tp->world_size << " ranks on nodes of " << (deck_rpn > 0 ? deck_rpn : tp->ranks_per_node)
        << " ranks";
    if (deck_rpn > 0 && deck_rpn != tp->ranks_per_node)
      sum << " (the deck's parallel.ranks_per_node, over the " << tp->ranks_per_node << " of --ranks-per-node)";
  }
  else
    sum << ", the layout rules that hold for any world size (give --world-size N [--ranks-per-node R] for the rest)";
  rep.summary = sum.str();
  return rep;
}

}  // namespace lct
