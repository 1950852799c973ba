#include "eval/eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ckpt/checkpoint.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text_file.h"
#include "core/timer.h"
#include "data/blend.h"
#include "data/data_files.h"
#include "data/tokenizer.h"
#include "eval/answer_scorer.h"
#include "eval/generated_eval.h"
#include "eval/host_sum.h"
#include "eval/prompts.h"
#include "eval/ruler_eval.h"
#include "infer/generate.h"
#include "ops/rank_backend.h"
#include "parallel/agree.h"

namespace lct {

namespace {


// The parameters of the first model, kept on the host so later lengths need not read the file again.
struct ParamSnapshot {
  std::vector<uint8_t> bytes;
  void save(Ops& ops, Llama& m) {
    bytes.resize(m.params().flat.bytes());
    ops.to_host(bytes.data(), m.params().flat);
  }
  void restore(Ops& ops, Llama& m) const {
    LCT_CHECK(bytes.size() == m.params().flat.bytes(), "parameter snapshot size");
    ops.from_host(m.params().flat, bytes.data());
  }
};

// Teacher-forced prompts are cut over the cp ring like training sequences.
void check_lengths_fit_the_ring(const std::vector<int64_t>& lengths, bool zigzag, int cp) {
  const int step = zigzag && cp > 1 ? 2 * cp : cp;
  for (int64_t len : lengths)
    if (len % step != 0)
      throw InputError(str("eval.lengths: ", len, " is not divisible by ", step,
                           (step == cp ? " (parallel.cp)" : " (2 * parallel.cp: zigzag sharding cuts a prompt into 2*cp chunks)"),
                           "; choose lengths that are"),
                       true);
}

}  // namespace

std::vector<EvalCell> evaluate_grid(const EvalGrid& grid, const EvalModel& em, ParallelContext& ctx, Ops& ops,
                                    const WeightLoader& load) {
  const Layout& L = ctx.layout;
  const RankPlace& me = ctx.me();
  check_lengths_fit_the_ring(grid.lengths, em.zigzag, L.cp);
  ParamSnapshot snapshot;
  bool loaded = false;
  std::vector<EvalCell> cells;
  for (int64_t len : grid.lengths) {
    Timer timer;
    const std::vector<EvalPrompt> prompts = collectively([&] {
      try {
        return make_eval_prompts(grid.spec, len, grid.depths, grid.samples, grid.seed, grid.with_needle);
      } catch (const InputError& e) {
        // The prompt builder speaks of "the length": here that is an entry of eval.lengths.
        std::string m = e.what();
        const std::string raise = "raise the length";
        if (const size_t at = m.find(raise); at != std::string::npos)
          m.replace(at, raise.size(), "raise that entry of eval.lengths");
        throw InputError(str("eval.lengths: ", len, ": ", m));
      }
    });
    const int64_t P = int64_t(prompts.size());
    const int64_t per_replica = (P + L.dp - 1) / L.dp;
    const int64_t first = int64_t(me.dp_rank) * per_replica, last = std::min(P, first + per_replica);
    const int64_t B = std::max<int64_t>(1, std::min(per_replica, grid.tokens_per_rank * L.cp / len));
    const int64_t batches = (per_replica + B - 1) / B;

    ModelShape shape;
    shape.micro_batch = B;
    shape.seq_len = len;
    shape.tp = L.tp;
    shape.tp_rank = me.tp_rank;
    shape.cp = L.cp;
    shape.cp_rank = me.cp_rank;
    shape.cp_a2a = L.cp_a2a;
    shape.sequence_parallel = em.sequence_parallel;
    shape.zigzag = em.zigzag;
    shape.attention_tile = em.attention_tile;
    Comm* tp_comm = L.tp > 1 ? ctx.tp.get() : nullptr;
    auto model = collectively([&] {
      return std::make_unique<Llama>(em.model, em.rope, shape, ops, tp_comm,
                                     L.cp_ring > 1 ? ctx.ring_comm() : nullptr, nullptr, ctx.a2a_comm());
    });
    if (!loaded) {
      load(*model);
      snapshot.save(ops, *model);
      loaded = true;
    } else {
      snapshot.restore(ops, *model);
    }

    // Where each global position sits among this rank's tokens (-1: another cp rank holds it).
    const std::vector<int32_t>& pos = model->positions();
    const int64_t Tl = int64_t(pos.size());
    std::vector<int64_t> where(size_t(len), -1);
    for (int64_t t = 0; t < Tl; ++t) where[size_t(pos[size_t(t)])] = t;

    // Per prompt: answer tokens predicted, answer tokens scored, sum of -log p.
    std::vector<double> sums(size_t(3 * P), 0.0);
    for (int64_t i = 0; i < batches; ++i) {
      MicroBatch mb;
      mb.inputs.reserve(size_t(B * Tl));
      mb.targets.assign(size_t(B * Tl), -1);  // no loss: scoring reads the logits of the answer rows
      std::vector<AnswerRow> rows;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t g = first + i * B + b;
        const bool real = g < last;
        const EvalPrompt& p = prompts[size_t(real ? g : 0)];  // padding rows repeat prompt 0, unscored
        for (int64_t t = 0; t < Tl; ++t) mb.inputs.push_back(p.tokens[size_t(pos[size_t(t)])]);
        if (!real) continue;
        for (int64_t a = p.answer_begin; a < p.answer_end; ++a) {
          const int64_t t = where[size_t(a - 1)];  // position a - 1 predicts token a
          if (t >= 0) rows.push_back(AnswerRow{g, b * Tl + t, p.tokens[size_t(a)]});
        }
      }
      model->forward(mb);
      const std::vector<RowStats> stats = score_answer_rows(*model, ops, tp_comm, rows);
      for (size_t r = 0; r < rows.size(); ++r) {
        double* s = sums.data() + 3 * rows[r].prompt;
        s[0] += stats[r].argmax == rows[r].target ? 1 : 0;
        s[1] += 1;
        s[2] += row_nll(stats[r]);
      }
    }
    // Each answer row was scored by exactly one rank of the dp x cp group (tp ranks hold copies).
    sum_over(ops, *ctx.dpcp, sums);

    for (size_t d = 0; d < grid.depths.size(); ++d) {
      EvalCell c;
      c.length = len;
      c.depth = grid.depths[d];
      for (int64_t k = 0; k < grid.samples; ++k) {
        const int64_t g = int64_t(d) * grid.samples + k;
        const EvalPrompt& p = prompts[size_t(g)];
        const double* s = sums.data() + 3 * g;
        const int64_t n = p.answer_end - p.answer_begin;
        LCT_CHECK(int64_t(std::llround(s[1])) == n, "prompt ", g, " scored ", s[1], " of ", n, " answer tokens");
        c.samples += 1;
        c.correct += int64_t(std::llround(s[0])) == n ? 1 : 0;
        c.tokens += n;
        c.tokens_correct += int64_t(std::llround(s[0]));
        c.nll_sum += s[2];
      }
      cells.push_back(c);
    }
    int64_t n = 0, k = 0;
    for (const EvalCell& c : cells)
      if (c.length == len) n += c.samples, k += c.correct;
    info("  length ", len, ": ", P, " prompts in ", batches, " micro-batch(es) of ", B, " per replica, accuracy ",
         str(std::round(1000.0 * double(k) / double(std::max<int64_t>(n, 1))) / 10.0), "%, ",
         std::round(timer.seconds() * 100) / 100, " s");
  }
  return cells;
}

SynthSpec training_synth_spec(const std::vector<std::string>& data_train, const std::string& format) {
  if (!data_train.empty()) {
    // A blend ("0.7 a.h5, 0.3 b.h5"): the first dataset's first file.
    const std::vector<std::string> files = expand_data_paths(parse_blend(data_train, "data.train").at(0).paths, format);
    const std::string name = open_token_file(files.at(0), format)->info().tokenizer;
    if (name.rfind("synth:", 0) == 0) return parse_synth_description(name, files[0] + " (tokenizer attribute)");
    info("eval: ", files[0], " is not an lcdata synth file (tokenizer '", name,
         "'); prompts use the default synthetic layout (docs/longctx.md)");
  } else {
    info("eval: data.train is empty; prompts use the default synthetic layout (docs/longctx.md)");
  }
  return SynthSpec{};
}

int run_eval(const Deck& deck, MPI_Comm world, const EvalOptions& opt) {
  const int stages = deck.num_stages();
  if (opt.stage > stages)
    throw InputError(str("--stage ", opt.stage, " but the deck defines ", stages, " stage(s)"), true);
  int stage = opt.stage > 0 ? opt.stage : stages;
  Deck d = collectively([&] { return resolved_stage(deck, stage); });
  Config c = collectively([&] { return config_from_deck(d); });

  // The model: --checkpoint, else --stage N's final checkpoint, else checkpoints/latest, else
  // model.init_from when it is a checkpoint.
  const std::string ckdir = c.run.out_dir + "/checkpoints";
  std::string path = opt.checkpoint, chosen = "--checkpoint";
  if (path.empty() && opt.stage > 0) {
    int64_t step = 0;
    for (int s = 1; s <= stage; ++s) step += deck.stage(s).get_int("train.steps");
    char name[64];
    std::snprintf(name, sizeof name, "step_%08lld.h5", (long long)step);
    const std::string stage_end = ckdir + "/" + name;
    if (!std::filesystem::exists(stage_end))
      throw InputError(str("--eval --stage ", stage, ": the stage's final checkpoint ", stage_end,
                           " does not exist (stage ", stage, " has not finished in run.out_dir = ", c.run.out_dir,
                           "); train it first, or name a checkpoint with --checkpoint PATH"),
                       true);
    path = stage_end;
    chosen = str("stage ", stage, "'s final checkpoint");
  }
  if (path.empty()) {
    const std::string name = latest_checkpoint_name(ckdir);
    if (!name.empty() && std::filesystem::exists(ckdir + "/" + name)) {
      path = ckdir + "/" + name;
      chosen = ckdir + "/latest";
    }
  }
  if (path.empty() && !c.model.init_from.empty() && !std::filesystem::is_directory(c.model.init_from)) {
    path = c.model.init_from;
    chosen = "model.init_from";
  }
  if (path.empty())
    throw InputError(str("--eval: no model to evaluate: ", ckdir, "/latest does not exist (nothing trained in "
                         "run.out_dir = ", c.run.out_dir, ") and model.init_from is not an lctrain checkpoint. Train "
                         "first (lctrain DECK), name a checkpoint with --checkpoint PATH, set run.out_dir to the run "
                         "to evaluate, or set model.init_from to a checkpoint .h5"),
                     true);
  const CheckpointMeta meta = read_checkpoint_meta(path, world);
  // Without --stage, the RoPE of the stage the checkpoint was trained in.
  if (opt.stage == 0 && meta.state.stage >= 1 && meta.state.stage <= stages && meta.state.stage != stage) {
    stage = int(meta.state.stage);
    d = collectively([&] { return resolved_stage(deck, stage); });
    c = collectively([&] { return config_from_deck(d); });
  }
  if (c.eval.tasks.empty() || c.eval.lengths.empty() || c.eval.depths.empty())
    throw InputError("eval.tasks, eval.lengths and eval.depths must each list at least one value", true);
  check_eval_task_names(c.eval.tasks);
  for (const std::string& task : c.eval.tasks)
    if (is_ruler_task(task)) require_ring_only_cp(c.parallel, str("eval.tasks = ", task, " (scored by generation)").c_str());

  auto ctx = collectively([&] { return make_parallel_context(world, c.parallel); });
  const Layout& L = ctx->layout;
  auto ops = make_rank_backend(c, *ctx);

  EvalModel em;
  em.model = meta.model;  // the checkpoint's shape is the truth; RoPE comes from the evaluated stage
  em.rope = c.rope;
  em.sequence_parallel = c.parallel.sequence_parallel;
  em.zigzag = c.parallel.zigzag;
  em.attention_tile = c.run.attention_tile;
  info("eval: ", path, " (", chosen, "; step ", meta.state.step, ", stage ", meta.state.stage, ") with stage ", stage,
       "'s RoPE: theta ", format_number(c.rope.theta),
       c.rope.scaling != "none" ? str(", ", c.rope.scaling, " scaling x", format_number(c.rope.factor)) : std::string(),
       meta.rope.theta != c.rope.theta ? str(" (trained with theta ", format_number(meta.rope.theta), ")") : std::string(),
       "; layout tp=", L.tp, " cp=", L.cp, " dp=", L.dp);

  SynthSpec train;
  std::unique_ptr<Tokenizer> tokenizer;  // text-mode prompts: kept alive for the whole evaluation
  bool synthetic = false;  // a teacher-forced task (niah, passkey, kv): the prompts' layout is needed
  for (const std::string& task : c.eval.tasks) synthetic = synthetic || !is_ruler_task(task);
  agree(world, [&] {
    if (!synthetic) return;
    if (c.eval.haystack.empty()) {
      train = training_synth_spec(c.data.train, c.data.format);
      return;
    }
    // Prompts in words: the haystack text through the model's tokenizer, gkamradt's needle sentences.
    tokenizer = make_tokenizer(c.data.tokenizer);
    if (tokenizer->vocab_size() > em.model.vocab_size)
      throw InputError(str("eval.haystack: data.tokenizer = ", c.data.tokenizer, " has ", tokenizer->vocab_size(),
                           " ids but the model's vocabulary is ", em.model.vocab_size,
                           "; use the tokenizer the model was trained with"));
    const std::string text = read_text_input(c.eval.haystack, "eval.haystack");
    train.filler = "text";
    train.tokenizer = tokenizer.get();
    train.text_tokens = tokenizer->encode(text, false);
    if (train.text_tokens.empty()) throw InputError(str("eval.haystack: '", c.eval.haystack, "' is empty"));
  });
  auto load = [&](Llama& m) { agree(world, [&] { load_model_weights(m, *ops, path); }); };
  // RULER's tasks are text scored by generation (eval/ruler_eval.h); the others run below, and
  // their lengths are checked first (an error after the RULER tasks' minutes of generation wasted them).
  if (std::any_of(c.eval.tasks.begin(), c.eval.tasks.end(), [](const std::string& t) { return !is_ruler_task(t); }))
    check_lengths_fit_the_ring(c.eval.lengths, em.zigzag, L.cp);
  run_ruler_tasks(c.eval.tasks, c, em, *ctx, *ops, load, stages > 1 ? str("_stage", stage) : std::string());
  std::unique_ptr<Llama> decoding_model;  // eval.by_generation: built once, on first use
  for (const std::string& task : c.eval.tasks) {
    if (is_ruler_task(task)) continue;
    EvalGrid grid;
    grid.spec = collectively([&] { return eval_spec_for_task(task, train); });
    grid.lengths = c.eval.lengths;
    grid.depths = c.eval.depths;
    grid.samples = c.eval.samples;
    grid.seed = c.eval.seed;
    grid.with_needle = !c.eval.no_needle;
    const std::string what = str(task, grid.with_needle ? "" : " (control: no needle)");
    const double chance = synth_token_chance(grid.spec);
    info("eval ", what, ": ", grid.lengths.size(), " lengths x ", grid.depths.size(), " depths x ", grid.samples,
         " samples, seed ", grid.seed, "; chance per answer token ", chance);
    Timer timer;
    const std::vector<EvalCell> cells = evaluate_grid(grid, em, *ctx, *ops, load);
    const std::string file = str(c.run.out_dir, "/", task, grid.with_needle ? "" : "_no_needle",
                                 stages > 1 ? str("_stage", stage) : std::string(), ".csv");
    agree(world, [&] {
      if (ctx->world_rank != 0) return;
      std::filesystem::create_directories(c.run.out_dir);
      write_niah_csv(file, cells);
    });
    int64_t tokens = 0, hit = 0;
    for (const EvalCell& e : cells) tokens += e.tokens, hit += e.tokens_correct;
    info(niah_table_text(cells, str(what, ": exact-match accuracy (", file, ")")), "answer tokens right: ",
         std::round(1000.0 * double(hit) / double(std::max<int64_t>(tokens, 1))) / 10.0, "% (chance ",
         std::round(1000.0 * chance) / 10.0, "%); ", std::round(timer.seconds() * 10) / 10, " s");
    if (!c.eval.by_generation) continue;
    Timer gen_timer;
    info("eval ", what, " by generation: greedy, the answer's length in tokens, prefill over cp = ", L.cp);
    if (!decoding_model) decoding_model = make_decoding_model(em, *ctx, *ops, load);
    const std::vector<EvalCell> gen = evaluate_grid_generated(grid, *decoding_model, em.rope, *ctx, *ops);
    const std::string gen_file = str(c.run.out_dir, "/", task, "_generated", grid.with_needle ? "" : "_no_needle",
                                     stages > 1 ? str("_stage", stage) : std::string(), ".csv");
    agree(world, [&] {
      if (ctx->world_rank != 0) return;
      write_niah_csv(gen_file, gen, false);
    });
    int64_t same = 0, n = 0;
    for (size_t i = 0; i < gen.size(); ++i) same += gen[i].correct == cells[i].correct ? 1 : 0, ++n;
    info(niah_table_text(gen, str(what, " by generation: exact-match accuracy (", gen_file, ")")), same, " of ", n,
         " cells have the teacher-forced count of exact matches; ", std::round(gen_timer.seconds() * 10) / 10, " s");
  }
  return kExitOk;
}

}  // namespace lct
