// This rank's KV cache: for every layer the keys and values (act dtype: bf16 on cuda) of the tokens
// this rank holds, with their global positions. Under context parallelism each cp rank caches the
// real (non-pad) tokens of its own prefill chunks plus the decoded tokens assigned to it; a query
// attends to every rank's shard and the partial results are merged (src/infer/llama_decoder.h).
// Rows are in arrival order; attention masks by position, so the order does not matter.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "ops/ops.h"

namespace lct {

class KvCache {
 public:
  // Room for `capacity` tokens per layer, heads and head size of this rank (after the tp split).
  KvCache(Ops& ops, int64_t n_layers, int64_t capacity, int64_t Hkv, int64_t D);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t size() const { return size_; }
  int64_t capacity() const { return capacity_; }
  int64_t bytes() const;  // device bytes held (K, V and positions)

  // Adds rows for tokens at these global positions and returns the first new row; each layer's K/V
  // for them is written with write() before that layer attends to the cache.
  int64_t append_positions(const std::vector<int32_t>& positions);
  // Copies rows [row0, row0 + count) of k and v ([.., Hkv, D] act, T rows) to cache rows [at, at + count).
  void write(int layer, int64_t at, const Tensor& k, const Tensor& v, int64_t row0, int64_t count);

  // Views of the cached rows: [1, size, Hkv, D] act, and positions [size] I32.
  Tensor keys(int layer) const;
  Tensor values(int layer) const;
  Tensor positions() const;
  const std::vector<int32_t>& host_positions() const { return pos_host_; }

 private:
  Ops& ops_;
  int64_t layers_, capacity_, Hkv_, D_;
  int64_t size_ = 0;
  std::vector<Tensor> k_, v_;
  Tensor pos_;
  std::vector<int32_t> pos_host_;
};

}  // namespace lct
