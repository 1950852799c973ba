#include "train_harness.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/rng.h"
#include "io/h5file.h"

namespace lct::test {

void write_markov_corpus(const std::string& path, int vocab, int64_t tokens, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint16_t> toks(static_cast<size_t>(tokens));
  int prev = 0;
  for (auto& t : toks) {
    // Mostly a fixed successor (learnable), sometimes a random jump (keeps the loss above zero).
    prev = rng.uniform() < 0.8 ? (prev * 7 + 3) % vocab : int(rng.below(uint64_t(vocab)));
    t = uint16_t(prev);
  }
  int32_t header[256] = {0};
  header[0] = 20240520;
  header[1] = 1;
  header[2] = int32_t(tokens);
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(header), sizeof header);
  f.write(reinterpret_cast<const char*>(toks.data()), std::streamsize(toks.size() * 2));
}

std::string tiny_deck(const std::string& corpus, const std::string& out_dir) {
  return "[run]\nout_dir = " + out_dir +
         "\nhang_timeout = 120\n"
         "[model]\nvocab_size = 64\ndim = 32\nn_layers = 2\nn_heads = 4\nn_kv_heads = 2\nffn_dim = 64\n"
         "[rope]\ntheta = 10000\n"
         "[train]\nseq_len = 32\nmicro_batch = 1\ngrad_accum = 4\nsteps = 5\nlr = 3e-3\nwarmup_steps = 2\n"
         "grad_clip = 0.5\nlog_every = 1\n"
         "[optim]\nweight_decay = 0.1\n"
         "[data]\ntrain = " + corpus + "\nprefetch = 2\n";
}

CommandResult run_lctrain(int np, const std::string& dir, const std::string& deck_text,
                          const std::vector<std::string>& overrides, const std::string& env) {
  const std::string deck = dir + "/run.deck";
  {
    std::ofstream f(deck);
    f << deck_text;
  }
  std::string cmd = env + " mpirun --oversubscribe --bind-to none --mca btl self,vader,tcp --mca btl_tcp_if_include lo "
                          "--mca oob_tcp_if_include lo -np " + std::to_string(np) + " " + bin_dir() + "/lctrain " + deck;
  for (const auto& o : overrides) cmd += " '" + o + "'";
  return run_command(cmd);
}

std::map<int64_t, nlohmann::json> read_metrics(const std::string& out_dir) {
  std::map<int64_t, nlohmann::json> rows;
  std::ifstream f(out_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("step") && j.contains("loss")) rows[j["step"].get<int64_t>()] = j;
  }
  return rows;
}

std::vector<double> losses(const std::map<int64_t, nlohmann::json>& rows) {
  std::vector<double> v;
  for (const auto& kv : rows) v.push_back(kv.second["loss"].get<double>());
  return v;
}

std::map<std::string, std::vector<float>> read_checkpoint_weights(const std::string& path) {
  std::map<std::string, std::vector<float>> w;
  H5File f(path, H5File::Read);
  for (const auto& name : f.list("/model")) w[name] = f.read_f32("/model/" + name);
  return w;
}

std::string checkpoint_path(const std::string& out_dir, int64_t step) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "/checkpoints/step_%08lld.h5", (long long)step);
  return out_dir + buf;
}

double max_weight_rel_error(const std::map<std::string, std::vector<float>>& a,
                            const std::map<std::string, std::vector<float>>& b, std::string* worst) {
  double m = a.size() == b.size() && !a.empty() ? 0.0 : INFINITY;
  for (const auto& kv : a) {
    auto it = b.find(kv.first);
    const double e = it == b.end() ? INFINITY : rel_error(kv.second, it->second);
    if (e > m) {
      m = e;
      if (worst) *worst = kv.first;
    }
  }
  return m;
}

}  // namespace lct::test
