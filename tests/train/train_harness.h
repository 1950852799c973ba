// Running bin/lctrain from tests: a learnable token corpus, decks, mpirun, metrics and
// checkpoint readers.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace lct::test {

// A corpus with learnable structure (a noisy Markov chain over `vocab` ids), as an llm.c shard
// (magic 20240520, uint16 tokens) at `path`.
void write_markov_corpus(const std::string& path, int vocab, int64_t tokens, uint64_t seed);

// A small deck: a tiny Llama reading `corpus`, writing to `out_dir`.
std::string tiny_deck(const std::string& corpus, const std::string& out_dir);

// mpirun -np N bin/lctrain DECKFILE overrides... (deck text is written to <dir>/run.deck).
CommandResult run_lctrain(int np, const std::string& dir, const std::string& deck_text,
                          const std::vector<std::string>& overrides, const std::string& env = "");

// metrics.jsonl rows with a "step" key, the last row of each step (a resumed run appends).
std::map<int64_t, nlohmann::json> read_metrics(const std::string& out_dir);
std::vector<double> losses(const std::map<int64_t, nlohmann::json>& rows);

// /model/<name> of a checkpoint, as float.
std::map<std::string, std::vector<float>> read_checkpoint_weights(const std::string& path);
std::string checkpoint_path(const std::string& out_dir, int64_t step);

// Largest per-tensor relative error between two weight sets (same names).
double max_weight_rel_error(const std::map<std::string, std::vector<float>>& a,
                            const std::map<std::string, std::vector<float>>& b, std::string* worst = nullptr);

}  // namespace lct::test
