#include "train/generate_run.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ckpt/checkpoint.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text_file.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "infer/generate.h"
#include "io/hf_config.h"
#include "ops/rank_backend.h"
#include "parallel/agree.h"
#include "train/resolve.h"
#include "train/weights.h"

namespace lct {

namespace {

bool is_hf_dir(const std::string& p) { return std::filesystem::is_directory(p); }

// Rank 0's notes go to stderr: stdout carries only the continuation.
template <class... A> void note(const A&... a) {
  if (log_rank() == 0) std::fprintf(stderr, "%s\n", str(a...).c_str());
}

}  // namespace

std::vector<int32_t> parse_id_list(const std::string& text) {
  std::vector<int32_t> ids;
  if (!text.empty() && text.back() == ',')  // getline would drop the empty last item silently
    throw InputError(str("--prompt-ids: '", text, "' ends with a comma (give non-negative integers separated by commas)"));
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 0 || v > 2147483647)
      throw InputError(str("--prompt-ids: '", item, "' is not a token id (give non-negative integers separated by commas)"));
    ids.push_back(int32_t(v));
  }
  if (ids.empty()) throw InputError("--prompt-ids: no ids given");
  return ids;
}

int run_generate(const Deck& deck, MPI_Comm world, const GenerateArgs& a) {
  const int stages = deck.num_stages();
  if (a.stage > stages) throw InputError(str("--stage ", a.stage, " but the deck defines ", stages, " stage(s)"), true);
  if (int(!a.prompt.empty()) + int(!a.prompt_file.empty()) + int(!a.prompt_ids.empty()) != 1)
    throw InputError("--generate needs exactly one of --prompt TEXT, --prompt-file FILE, --prompt-ids 1,2,3", true);
  int stage = a.stage > 0 ? a.stage : stages;
  Deck d = collectively([&] { return resolve_run_stage(deck, stage); });

  // The model: --checkpoint, else checkpoints/latest of run.out_dir, else model.init_from.
  std::string path = a.checkpoint;
  if (path.empty()) {
    const std::string ckdir = d.get("run.out_dir") + "/checkpoints";
    const std::string name = latest_checkpoint_name(ckdir);
    if (!name.empty() && std::filesystem::exists(ckdir + "/" + name)) path = ckdir + "/" + name;
  }
  if (path.empty()) path = d.get("model.init_from");
  if (path.empty())
    throw InputError(str("--generate: no model: give --checkpoint PATH (an lctrain checkpoint .h5 or an HF directory), "
                         "train first (run.out_dir = ", d.get("run.out_dir"), " has no checkpoints/latest), or set "
                         "model.init_from"),
                     true);
  int64_t context = 0;
  ModelConfig model_cfg;
  if (is_hf_dir(path)) {
    d = collectively([&] {
      Deck s = deck.stage(stage);
      s.set("model.init_from", path, "--checkpoint");
      apply_init_from(s);
      resolve_deck(s);
      return s;
    });
    context = collectively([&] { return read_hf_config(path).max_position_embeddings; });
    model_cfg = collectively([&] { return config_from_deck(d).model; });
  } else {
    const CheckpointMeta meta = read_checkpoint_meta(path, world);
    if (a.stage == 0 && meta.state.stage >= 1 && meta.state.stage <= stages && meta.state.stage != stage) {
      stage = int(meta.state.stage);
      d = collectively([&] { return resolve_run_stage(deck, stage); });
    }
    model_cfg = meta.model;
    context = meta.seq_len;
  }
  const Config c = collectively([&] { return config_from_deck(d); });
  require_ring_only_cp(c.parallel, "--generate");
  const int64_t max_new = a.max_new > 0 ? a.max_new : d.get_int("generate.max_new");
  // Dynamic NTK scaling exists to run past the original length (max_position_embeddings of an HF
  // directory, which a dynamic model's export holds): no limit unless generate.max_context sets one.
  if (c.rope.scaling == "dynamic") context = 0;
  if (d.get_int("generate.max_context") > 0) context = d.get_int("generate.max_context");
  const bool chat = d.get_bool("generate.chat");

  // The prompt, the same on every rank.
  std::unique_ptr<Tokenizer> tok;
  std::vector<int32_t> prompt;
  std::vector<int32_t> stop;
  agree(world, [&] {
    if (!a.prompt_ids.empty()) {
      if (chat) throw InputError("generate.chat = true needs a text prompt (--prompt or --prompt-file), not --prompt-ids");
      prompt = parse_id_list(a.prompt_ids);
    }
    // Text in or out needs the tokenizer. Ids in and out read it for its end-of-text token when the
    // deck names one (--ids must not change what is generated), not the default bytes tokenizer,
    // whose 257 is an ordinary token of another model's vocabulary.
    const bool text_io = !a.ids || prompt.empty();
    const bool named_tokenizer = d.given("data.tokenizer");
    if (text_io || (named_tokenizer && d.get_bool("generate.stop_at_eos"))) tok = make_tokenizer(c.data.tokenizer);
    if (prompt.empty()) {
      std::string text = a.prompt;
      if (!a.prompt_file.empty()) text = read_text_input(a.prompt_file, "--prompt-file");
      prompt = chat ? make_chat_template("llama3", *tok)->render({{"user", text}}, true).tokens : tok->encode_with_bos(text);
    }
    if (text_io && tok->vocab_size() > model_cfg.vocab_size)
      throw InputError(str("data.tokenizer = ", c.data.tokenizer, " has ", tok->vocab_size(), " ids but the model's vocabulary is ",
                           model_cfg.vocab_size, "; use the tokenizer the model was trained with"));
    for (int32_t id : prompt)
      if (id >= model_cfg.vocab_size)
        throw InputError(str("prompt token id ", id, " is outside the model's vocabulary [0, ", model_cfg.vocab_size, ")"));
    if (context > 0 && int64_t(prompt.size()) + max_new > context)
      throw InputError(str("the prompt (", prompt.size(), " tokens) + ", max_new, " new tokens exceed the model's context of ",
                           context, " tokens; shorten the prompt, lower --max-new, or raise generate.max_context"));
    if (tok && chat) stop.push_back(make_chat_template("llama3", *tok)->end_of_turn_id());
    if (tok && d.get_bool("generate.stop_at_eos") && tok->eos_id() >= 0) stop.push_back(tok->eos_id());
  });

  auto ctx = collectively([&] { return make_parallel_context(world, c.parallel); });
  const Layout& L = ctx->layout;
  auto ops = make_rank_backend(c, *ctx);
  ModelShape shape;
  shape.micro_batch = 1;
  shape.seq_len = int64_t(c.parallel.zigzag && L.cp > 1 ? 2 * L.cp : L.cp) * L.tp;  // the decoder has its own buffers
  shape.tp = L.tp;
  shape.tp_rank = ctx->me().tp_rank;
  shape.cp = L.cp;
  shape.cp_rank = ctx->me().cp_rank;
  shape.sequence_parallel = c.parallel.sequence_parallel;
  shape.zigzag = c.parallel.zigzag;
  shape.recompute = true;
  Comm* tp = L.tp > 1 ? ctx->tp.get() : nullptr;
  Comm* cp = L.cp > 1 ? ctx->cp.get() : nullptr;
  auto model = collectively([&] { return std::make_unique<Llama>(model_cfg, c.rope, shape, *ops, tp, cp); });
  agree(world, [&] {
    if (is_hf_dir(path)) load_hf_weights(*model, *ops, path);
    else load_model_weights(*model, *ops, path);
  });
  note("generate: ", path, " (stage ", stage, "'s RoPE, theta ", format_number(c.rope.theta), "); layout tp=", L.tp,
       " cp=", L.cp, " dp=", L.dp, "; prompt ", prompt.size(), " tokens, up to ", max_new, " new");

  LlamaDecoder dec(*model, c.rope, *ops, tp, cp);
  GenerationOptions o;
  o.max_new = max_new;
  o.sampling.temperature = d.get_float("generate.temperature");
  o.sampling.top_p = d.get_float("generate.top_p");
  o.sampling.seed = uint64_t(d.get_int("generate.seed"));
  o.stop_ids = stop;
  const GenerationResult r = collectively([&] { return generate(dec, *ops, tp, cp, prompt, o); });
  if (ctx->world_rank == 0) {
    if (a.ids) {
      std::string line;
      for (size_t i = 0; i < r.ids.size(); ++i) line += (i ? "," : "") + std::to_string(r.ids[i]);
      std::printf("%s\n", line.c_str());
    } else {
      std::vector<int32_t> shown = r.ids;
      if (r.stopped) shown.pop_back();  // the stop token is not text
      int64_t unknown = 0;
      const std::string text = decode_generated(*tok, shown, &unknown);
      std::printf("%s\n", text.c_str());
      if (unknown)
        note("generate: ", unknown, " generated id(s) lie outside data.tokenizer's ", tok->vocab_size(),
             " ids (the model's vocabulary is ", model_cfg.vocab_size, "): printed as U+FFFD; --ids prints every id");
    }
    std::fflush(stdout);
  }
  note("generate: ", r.ids.size(), " tokens", r.stopped ? " (stopped)" : "", "; prefill ", r.prefill_s, " s, decode ",
       r.decode_s, " s (", r.ids.size() > 1 ? r.decode_s / double(r.ids.size() - 1) * 1e3 : 0.0, " ms/token)");
  return kExitOk;
}

}  // namespace lct
