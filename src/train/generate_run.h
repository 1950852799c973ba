// `lctrain --generate DECK [--checkpoint PATH] (--prompt TEXT | --prompt-file F | --prompt-ids 1,2,3)
// [--max-new N] [--ids]`: loads a model (an lctrain checkpoint or an HF directory) on the deck's
// layout and prints the continuation of one prompt (src/infer/). docs/running.md.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>

#include "deck/deck.h"

namespace lct {

struct GenerateArgs {
  int stage = 0;             // the stage whose RoPE runs (0: the checkpoint's, else the deck's last)
  std::string checkpoint;    // "" = <run.out_dir>/checkpoints/latest, else model.init_from
  std::string prompt, prompt_file, prompt_ids;  // exactly one is set
  int64_t max_new = 0;       // 0 = generate.max_new
  bool ids = false;          // print the generated ids, comma-separated, instead of text
};

// Collective over `world`; returns the exit code. Errors are thrown (core/error.h).
int run_generate(const Deck& deck, MPI_Comm world, const GenerateArgs& a);

// "1,2,3" -> ids; InputError naming --prompt-ids otherwise.
std::vector<int32_t> parse_id_list(const std::string& text);

}  // namespace lct
