// Per-token decode time and prefill time against context length (docs/PERFORMANCE.md,
// "Generation"): a seeded model of the given shape on the cpu backend, one prompt per length,
// prefill over the cp ring, then N greedy decode steps. Run under mpirun -np CP (cp = world size).
//   bench_decode [--lengths 1024,4096,...] [--new N] [--dim C] [--layers L] [--heads H] [--kv-heads K]
// Prints one line per length: length, prefill s, decode ms/token, cached tokens per rank, KV bytes/rank.
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "infer/generate.h"
#include "model/params.h"
#include "parallel/context.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  std::vector<int64_t> lengths = {1024, 4096, 16384};
  int64_t n_new = 32;
  lct::ModelConfig m;
  m.vocab_size = 258;
  m.dim = 256;
  m.n_layers = 4;
  m.n_heads = 8;
  m.n_kv_heads = 4;
  m.head_dim = 32;
  m.ffn_dim = 704;
  m.init_std = 0.05;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--lengths") {
      lengths.clear();
      std::stringstream ss(v);
      for (std::string x; std::getline(ss, x, ',');) lengths.push_back(std::atoll(x.c_str()));
    } else if (k == "--new") n_new = std::atoll(v.c_str());
    else if (k == "--dim") m.dim = std::atoll(v.c_str());
    else if (k == "--layers") m.n_layers = std::atoll(v.c_str());
    else if (k == "--heads") m.n_heads = std::atoll(v.c_str());
    else if (k == "--kv-heads") m.n_kv_heads = std::atoll(v.c_str());
    else {
      if (rank == 0) std::fprintf(stderr, "bench_decode: unknown option %s\n", k.c_str());
      MPI_Finalize();
      return 2;
    }
  }
  m.head_dim = m.dim / m.n_heads;
  lct::ParallelConfig pc;
  pc.cp = world;
  pc.dp = 1;
  auto ctx = lct::make_parallel_context(MPI_COMM_WORLD, pc);
  auto ops = lct::make_cpu_ops(lct::DType::F32, 64);
  lct::ModelShape shape;
  shape.cp = world;
  shape.cp_rank = ctx->me().cp_rank;
  shape.seq_len = 2 * world;
  shape.recompute = true;
  lct::RopeConfig rope;
  rope.theta = 500000;
  lct::Comm* cp = world > 1 ? ctx->cp.get() : nullptr;
  lct::Llama model(m, rope, shape, *ops, nullptr, cp);
  std::vector<float> f;
  lct::init_params_host(model.table(), m, 1, f);
  f.resize(size_t(model.params().flat.numel()), 0.0f);
  ops->from_host(model.params().flat, f.data());
  lct::LlamaDecoder dec(model, rope, *ops, nullptr, cp);
  if (rank == 0)
    std::printf("# bench_decode: dim %lld, %lld layers, %lld/%lld heads, cp %d, cpu fp32, %lld decode steps\n"
                "# length  prefill_s  decode_ms_per_token  cached_per_rank  kv_bytes_per_rank\n",
                (long long)m.dim, (long long)m.n_layers, (long long)m.n_heads, (long long)m.n_kv_heads, world,
                (long long)n_new);
  for (int64_t L : lengths) {
    std::vector<int32_t> prompt(static_cast<size_t>(L));
    for (int64_t i = 0; i < L; ++i) prompt[size_t(i)] = int32_t((i * 7919 + 13) % 256);
    lct::GenerationOptions o;
    o.max_new = n_new + 1;  // n_new decode() calls
    const lct::GenerationResult r = lct::generate(dec, *ops, nullptr, cp, prompt, o);
    if (rank == 0)
      std::printf("%8lld  %9.3f  %19.3f  %15lld  %17lld\n", (long long)L, r.prefill_s, 1e3 * r.decode_s / double(n_new),
                  (long long)dec.cache()->size(), (long long)dec.cache()->bytes());
    std::fflush(stdout);
  }
  MPI_Finalize();
  return 0;
}
