#include "model/params.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace lct {

namespace {

// FNV-1a: a fixed hash, so initial weights do not depend on the standard library's std::hash.
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

ParamSpec spec(const std::string& name, int64_t rows, int64_t cols, Split split, bool vec, int tp, int tp_rank) {
  ParamSpec p;
  p.name = name;
  p.rows = rows;
  p.cols = vec ? 1 : cols;
  p.is_vector = vec;
  p.split = split;
  p.decay = !vec;
  p.local_rows = rows;
  p.local_cols = p.cols;
  p.valid_rows = rows;
  if (split == Split::Rows) {
    LCT_CHECK(rows % tp == 0, name, " rows ", rows, " not divisible by tp ", tp);
    p.local_rows = rows / tp;
    p.row0 = p.local_rows * tp_rank;
    p.valid_rows = p.local_rows;
  } else if (split == Split::Cols) {
    LCT_CHECK(cols % tp == 0, name, " cols ", cols, " not divisible by tp ", tp);
    p.local_cols = cols / tp;
    p.col0 = p.local_cols * tp_rank;
  }
  return p;
}

// The vocabulary-parallel embedding / LM head: rank r owns ids [r Vr, min(V, (r + 1) Vr)) and
// holds them in vocab_padded_rows_per_rank rows; the rows past its ids are zero padding.
ParamSpec vocab_spec(const std::string& name, const ModelConfig& m, int tp, int tp_rank) {
  ParamSpec p = spec(name, m.vocab_size, m.dim, Split::None, false, tp, tp_rank);
  const int64_t own = vocab_rows_per_rank(m, tp);
  p.split = Split::Rows;
  p.local_rows = vocab_padded_rows_per_rank(m, tp);
  p.row0 = own * tp_rank;
  p.valid_rows = std::max<int64_t>(0, std::min(own, m.vocab_size - p.row0));
  return p;
}

}  // namespace

ParamTable ParamTable::build(const ModelConfig& m, int tp, int tp_rank, int64_t unit_padding) {
  if (m.n_heads % tp || m.n_kv_heads % tp)
    throw InputError(str("parallel.tp = ", tp, " must divide model.n_heads = ", m.n_heads, " and model.n_kv_heads = ",
                         m.n_kv_heads, " (attention heads are split over tensor-parallel ranks)"));
  if (m.ffn_dim % tp)
    throw InputError(str("parallel.tp = ", tp, " must divide model.ffn_dim = ", m.ffn_dim));
  ParamTable t;
  const int64_t C = m.dim, D = m.head_dim, F = m.ffn_dim;
  const int64_t pad = std::max<int64_t>(1, unit_padding);
  auto add = [&](ParamSpec p) {
    p.offset = t.total;
    t.total += p.local_numel();
    t.specs.push_back(p);
  };
  auto close_unit = [&](int64_t begin, int first) {
    t.total = (t.total + pad - 1) / pad * pad;
    t.units.push_back({begin, t.total - begin, first, int(t.specs.size())});
  };
  add(vocab_spec("model.embed_tokens.weight", m, tp, tp_rank));
  close_unit(0, 0);
  for (int64_t l = 0; l < m.n_layers; ++l) {
    const int64_t begin = t.total;
    const int first = int(t.specs.size());
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    add(spec(pre + "input_layernorm.weight", C, 1, Split::None, true, tp, tp_rank));
    add(spec(pre + "self_attn.q_proj.weight", m.n_heads * D, C, Split::Rows, false, tp, tp_rank));
    add(spec(pre + "self_attn.k_proj.weight", m.n_kv_heads * D, C, Split::Rows, false, tp, tp_rank));
    add(spec(pre + "self_attn.v_proj.weight", m.n_kv_heads * D, C, Split::Rows, false, tp, tp_rank));
    add(spec(pre + "self_attn.o_proj.weight", C, m.n_heads * D, Split::Cols, false, tp, tp_rank));
    add(spec(pre + "post_attention_layernorm.weight", C, 1, Split::None, true, tp, tp_rank));
    add(spec(pre + "mlp.gate_proj.weight", F, C, Split::Rows, false, tp, tp_rank));
    add(spec(pre + "mlp.up_proj.weight", F, C, Split::Rows, false, tp, tp_rank));
    add(spec(pre + "mlp.down_proj.weight", C, F, Split::Cols, false, tp, tp_rank));
    close_unit(begin, first);
  }
  const int64_t head_begin = t.total;
  const int head_first = int(t.specs.size());
  add(spec("model.norm.weight", C, 1, Split::None, true, tp, tp_rank));
  if (!m.tie_embeddings) add(vocab_spec("lm_head.weight", m, tp, tp_rank));
  close_unit(head_begin, head_first);
  const ParamSpec& e = t.specs.front();
  t.vocab_local = e.local_rows;
  t.vocab_begin = e.row0;
  t.vocab_valid = e.valid_rows;
  return t;
}

int64_t ParamTable::full_numel() const {
  int64_t n = 0;
  for (const ParamSpec& p : specs) n += p.full_numel();
  return n;
}

int ParamTable::index(const std::string& name) const {
  for (size_t i = 0; i < specs.size(); ++i)
    if (specs[i].name == name) return int(i);
  return -1;
}

const ParamSpec& ParamTable::get(const std::string& name) const {
  int i = index(name);
  LCT_CHECK(i >= 0, "no parameter ", name);
  return specs[size_t(i)];
}

void ParamBuffer::bind(const ParamTable& table, void* base, DType dtype) {
  flat = Tensor(base, dtype, {table.total});
  views.clear();
  for (const auto& p : table.specs) {
    void* ptr = static_cast<char*>(base) + size_t(p.offset) * dtype_size(dtype);
    views.push_back(p.is_vector ? Tensor(ptr, dtype, {p.local_rows}) : Tensor(ptr, dtype, {p.local_rows, p.local_cols}));
  }
}

Tensor unit_view(const ParamTable& table, int spec, void* unit_base, DType dtype) {
  const ParamSpec& p = table.specs[size_t(spec)];
  int u = 0;
  while (table.units[size_t(u)].end_spec <= spec) ++u;
  void* ptr = static_cast<char*>(unit_base) + size_t(p.offset - table.units[size_t(u)].begin) * dtype_size(dtype);
  return p.is_vector ? Tensor(ptr, dtype, {p.local_rows}) : Tensor(ptr, dtype, {p.local_rows, p.local_cols});
}

LayerWeights layer_weights(const ParamTable& table, int64_t l, void* unit_base, DType dtype) {
  const int first = table.units[size_t(ParamTable::layer_unit(l))].first_spec;
  auto v = [&](int k) { return unit_view(table, first + k, unit_base, dtype); };
  return {v(0), v(1), v(2), v(3), v(4), v(5), v(6), v(7), v(8)};  // the order build() adds them
}

void init_params_host(const ParamTable& table, const ModelConfig& m, uint64_t seed, std::vector<float>& out) {
  out.assign(size_t(table.total), 0.0f);
  for (size_t i = 0; i < table.specs.size(); ++i) {
    const ParamSpec& p = table.specs[i];
    float* dst = out.data() + p.offset;
    if (p.is_vector) {
      for (int64_t r = 0; r < p.local_rows; ++r) dst[r] = 1.0f;
      continue;
    }
    const bool residual_out = p.name.find("o_proj") != std::string::npos || p.name.find("down_proj") != std::string::npos;
    const double std = m.init_std * (residual_out ? 1.0 / std::sqrt(2.0 * double(m.n_layers)) : 1.0);
    // One stream per (tensor name, full row): a slice draws exactly the values of the full tensor.
    const uint64_t name_hash = fnv1a(p.name);
    // Rows are independent streams: threads may draw them in any order (a 1B model in seconds).
#pragma omp parallel
    {
      std::vector<float> row(size_t(p.cols));
#pragma omp for schedule(static)
      for (int64_t r = 0; r < p.valid_rows; ++r) {  // padding rows stay zero
        Rng rng(seed ^ name_hash, uint64_t(p.row0 + r));
        for (int64_t c = 0; c < p.cols; ++c) row[size_t(c)] = float(rng.normal() * std);
        for (int64_t c = 0; c < p.local_cols; ++c) dst[r * p.local_cols + c] = row[size_t(p.col0 + c)];
      }
    }
  }
}

}  // namespace lct
