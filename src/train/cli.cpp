#include "train/cli.h"

#include <mpi.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "deck/config.h"
#include "eval/eval.h"
#include "train/generate_run.h"
#include "train/help.h"
#include "train/plan.h"
#include "train/resolve.h"
#include "train/signals.h"
#include "train/threads.h"
#include "train/trainer.h"
#include "train/validate.h"

namespace lct {
namespace {

struct Args {
  enum Mode { Train, DryRun, Plan, Eval, Generate, Help, HelpMarkdown, Version } mode = Train;
  std::string deck;
  std::vector<std::string> overrides;
  int stage = 0;
  int world_size = 0, ranks_per_node = 0;
  std::string checkpoint;  // --eval: evaluate this checkpoint
  GenerateArgs gen;        // --generate
};

// A positive integer no larger than `max` (strtol's long would wrap around in int silently).
int int_arg(const std::string& flag, const char* v, long long max = 1 << 30) {
  char* end = nullptr;
  errno = 0;
  long long x = v ? std::strtoll(v, &end, 10) : 0;
  if (!v || *v == '\0' || *end != '\0' || errno != 0 || x < 1 || x > max)
    throw InputError(str(flag, " needs a positive integer up to ", max, (v ? str(", not '", v, "'") : std::string())));
  return int(x);
}

Args parse_args(int argc, char** argv) {
  Args a;
  std::string mode_flag;  // the --dry-run/--plan/--eval/--generate given
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (!a.deck.empty() && s.rfind("--", 0) == 0 && s.find('.') != std::string::npos) {
      a.overrides.push_back(s);  // --section.key=value (or --section.key value)
      if (s.find('=') == std::string::npos && i + 1 < argc) a.overrides.push_back(argv[++i]);
      continue;
    }
    auto set_mode = [&](Args::Mode m) {
      if (!mode_flag.empty() && mode_flag != s)
        throw InputError(str(mode_flag, " and ", s, " are two modes; give one of them\n", usage_text()));
      mode_flag = s;
      a.mode = m;
    };
    if (s == "--help" || s == "-h") a.mode = Args::Help;
    else if (s == "--help-markdown") a.mode = Args::HelpMarkdown;
    else if (s == "--version") a.mode = Args::Version;
    else if (s == "--dry-run") set_mode(Args::DryRun);
    else if (s == "--plan") set_mode(Args::Plan);
    else if (s == "--eval") set_mode(Args::Eval);
    else if (s == "--generate") set_mode(Args::Generate);
    else if (s == "--prompt" || s == "--prompt-file" || s == "--prompt-ids") {
      if (i + 1 >= argc) throw InputError(str(s, " needs a value"));
      (s == "--prompt" ? a.gen.prompt : s == "--prompt-file" ? a.gen.prompt_file : a.gen.prompt_ids) = argv[++i];
    } else if (s == "--max-new") a.gen.max_new = int_arg(s, i + 1 < argc ? argv[++i] : nullptr);
    else if (s == "--ids") a.gen.ids = true;
    else if (s == "--stage") a.stage = int_arg(s, i + 1 < argc ? argv[++i] : nullptr);
    else if (s.rfind("--stage=", 0) == 0) a.stage = int_arg("--stage", s.c_str() + 8);
    else if (s == "--checkpoint") {
      if (i + 1 >= argc) throw InputError("--checkpoint needs a path");
      a.checkpoint = argv[++i];
    } else if (s == "--world-size") a.world_size = int_arg(s, i + 1 < argc ? argv[++i] : nullptr);
    else if (s == "--ranks-per-node") a.ranks_per_node = int_arg(s, i + 1 < argc ? argv[++i] : nullptr);
    else if (s.rfind("--", 0) == 0) throw InputError(str("unknown option '", s, "'\n", usage_text()));
    else if (a.deck.empty()) a.deck = s;
    else throw InputError(str("unexpected argument '", s, "' (one deck per run)\n", usage_text()));
  }
  // An option the chosen mode does not read is an error, not silently ignored (a --checkpoint given
  // to a training run does not resume from it: training resumes by checkpoint.resume).
  const std::string mode_name = mode_flag.empty() ? std::string("training (no mode flag)") : mode_flag;
  auto only_in = [&](bool given, const char* opt, std::initializer_list<Args::Mode> modes, const char* where) {
    if (!given) return;
    for (Args::Mode m : modes)
      if (a.mode == m) return;
    throw InputError(str(opt, " is not read by ", mode_name, "; it belongs to ", where,
                         a.mode == Args::Train && std::string(opt) == "--checkpoint"
                             ? " (training resumes by checkpoint.resume = auto|PATH, or starts from model.init_from)"
                             : ""));
  };
  if (a.mode != Args::Help && a.mode != Args::HelpMarkdown && a.mode != Args::Version) {
    // --dry-run takes it too: jobs/eval.sbatch's DRY_RUN=1 checks the eval job's own arguments.
    only_in(!a.checkpoint.empty(), "--checkpoint", {Args::Eval, Args::Generate, Args::DryRun},
            "--eval and --generate (and --dry-run, which checks that it exists)");
    only_in(!a.gen.prompt.empty() || !a.gen.prompt_file.empty() || !a.gen.prompt_ids.empty(), "--prompt/--prompt-file/--prompt-ids",
            {Args::Generate}, "--generate");
    only_in(a.gen.max_new > 0, "--max-new", {Args::Generate}, "--generate");
    only_in(a.gen.ids, "--ids", {Args::Generate}, "--generate");
    only_in(a.world_size > 0 || a.ranks_per_node > 0, "--world-size/--ranks-per-node", {Args::DryRun, Args::Plan},
            "--dry-run and --plan (a run's world size is mpirun's)");
    if (a.mode == Args::DryRun && a.ranks_per_node > 0 && a.world_size == 0)
      throw InputError("--ranks-per-node is read with --world-size N (the job's ranks); give both, or neither");
  }
  if (a.deck.empty() && (a.mode == Args::Train || a.mode == Args::DryRun || a.mode == Args::Plan || a.mode == Args::Eval ||
                         a.mode == Args::Generate))
    throw InputError(str("no deck given\n", usage_text()));
  return a;
}

// The rank as the launcher tells it, before MPI is initialised (to print pre-MPI errors once).
int launcher_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"})
    if (const char* r = std::getenv(v)) return std::atoi(r);
  return 0;
}

// Everything training would reject at start (train/validate.h), then the effective deck.
int dry_run(const Args& a) {
  Deck deck = Deck::from_file(a.deck, a.overrides);
  ValidateOptions vo;
  vo.only_stage = a.stage;
  vo.world_size = a.world_size;
  vo.ranks_per_node = a.ranks_per_node;
  const ValidateReport rep = validate_run(deck, vo);
  std::error_code ec;
  if (!a.checkpoint.empty() && !std::filesystem::exists(a.checkpoint, ec))
    throw InputError(str("--checkpoint ", a.checkpoint, ": no such file or directory"));
  Deck base = resolve_run_stage(deck, 1);
  std::string out = str("# lctrain --dry-run ", a.deck, ": valid; ", rep.summary, "\n");
  for (const std::string& n : rep.notes) out += "# note: " + n + "\n";
  out += "# effective deck: every key, resolved (a valid deck that reproduces the run)\n";
  out += base.effective_text();
  for (int s = 1; s <= deck.num_stages(); ++s) out += resolve_run_stage(deck, s).effective_text(str("stage", s, "."));
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

int run_mpi(const Args& a, int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  install_stop_signals();  // after MPI_Init, so ours are the handlers in place
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  log_init(rank, size);
  int code = kExitOk;
  try {
    configure_threads(MPI_COMM_WORLD);
    Deck deck = [&] {
      try {
        return Deck::from_file(a.deck, a.overrides);
      } catch (const Error& e) {
        throw e.as_collective();  // every rank reads the same deck
      }
    }();
    RunOptions opt;
    opt.only_stage = a.stage;
    if (a.mode == Args::Eval) {
      EvalOptions eo;
      eo.stage = a.stage;
      eo.checkpoint = a.checkpoint;
      code = run_eval(deck, MPI_COMM_WORLD, eo);
    } else if (a.mode == Args::Generate) {
      GenerateArgs g = a.gen;
      g.stage = a.stage;
      g.checkpoint = a.checkpoint;
      code = run_generate(deck, MPI_COMM_WORLD, g);
    } else {
      code = run_training(deck, MPI_COMM_WORLD, opt);
    }
  } catch (const Error& e) {
    if (!e.collective()) {
      // Only this rank knows: stop the whole job so no rank waits in a collective.
      log_error(e.what());
      MPI_Abort(MPI_COMM_WORLD, e.code());
      return e.code();
    }
    if (rank == 0) log_error(e.what());
    code = e.code();
  } catch (const std::exception& e) {
    log_error(str("unexpected failure: ", e.what()));
    MPI_Abort(MPI_COMM_WORLD, kExitFailure);
    return kExitFailure;
  }
  MPI_Finalize();
  return code;
}

}  // namespace

int lctrain_main(int argc, char** argv) {
  Args a;
  try {
    a = parse_args(argc, argv);
    switch (a.mode) {
      case Args::Help: std::fputs(help_text().c_str(), stdout); return kExitOk;
      case Args::HelpMarkdown: std::fputs(deck_markdown().c_str(), stdout); return kExitOk;
      case Args::Version: std::puts("lctrain 0.1.0"); return kExitOk;
      case Args::DryRun: return dry_run(a);
      case Args::Plan:
        return run_plan(Deck::from_file(a.deck, a.overrides), a.world_size, a.ranks_per_node, std::cout, a.stage);
      default: break;
    }
  } catch (const Error& e) {
    if (launcher_rank() == 0) std::fprintf(stderr, "lctrain error: %s\n", e.what());
    return e.code();
  }
  return run_mpi(a, argc, argv);
}

}  // namespace lct
