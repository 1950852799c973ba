// The op interface: the one small set of operations the model, ring attention and optimizer are
// written against. Two backends implement it: cpu (Eigen + OpenMP; fp32 for training, fp64 for
// gradient checks) and cuda (bf16 compute, fp32 accumulators). One forward and one backward per op.
//
// Conventions
//  - Tensors are row-major views (core/tensor.h) of memory owned by this backend (alloc()).
//  - "act" dtype: activations and the weights forward reads (f32 / f64 on cpu, bf16 on cuda).
//    "acc" dtype: accumulators and everything that must stay precise: RMSNorm rstd, attention
//    out/lse across ring hops, dQ/dK/dV, weight gradients, master weights, optimizer moments,
//    RoPE tables, loss statistics (f32 / f64 on cpu, f32 on cuda).
//  - Backward ops ACCUMULATE into weight gradients (+=). For input gradients each op says.
//  - Linear layers follow torch.nn.Linear: y = x W^T with W stored [out_features, in_features].
//  - Token ids and positions are I32 tensors in backend memory. Positions are global (a rank may
//    hold non-contiguous chunks of a sequence), and attention masks by position (AttnMask below).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"

namespace lct {

// What an allocation holds: the allocation ledger counts bytes per category (metrics.jsonl's
// device_peak_bytes / host_peak_bytes; --plan predicts the same categories).
//   Weights      parameters the forward reads (resident, a ZeRO-3 shard, or a gathered unit)
//   Gradients    weight gradients (resident, a reduced shard, or a unit buffer under ZeRO-2/3)
//   Optimizer    master weights and AdamW moments
//   LayerInputs  the residual stream kept at each layer boundary for backward (what
//                train.recompute = layer keeps and train.offload = activations moves to host)
//   Activations  everything else a step computes (the per-layer working set, the ring's buffers)
//   CommBuffers  staging for collectives (reduce-scatter results on their way to a shard)
//   Other        short-lived copies (checkpoint I/O, evaluation downloads)
enum class Mem : uint8_t { Weights, Gradients, Optimizer, LayerInputs, Activations, CommBuffers, Other };
constexpr int kMemKinds = 7;
const char* mem_name(Mem m);  // "weights", "gradients", ... (the metrics.jsonl keys)

// Bytes held now and their high-water marks, in total and per category (each category's own peak).
struct MemoryUse {
  int64_t now = 0, peak = 0;
  int64_t kind_now[kMemKinds] = {0, 0, 0, 0, 0, 0, 0};
  int64_t kind_peak[kMemKinds] = {0, 0, 0, 0, 0, 0, 0};
  int64_t now_of(Mem m) const { return kind_now[int(m)]; }
  int64_t peak_of(Mem m) const { return kind_peak[int(m)]; }
};

// A host <-> device copy in flight (Ops::to_host_async / from_host_async).
class PendingCopy {
 public:
  virtual ~PendingCopy() = default;
  virtual void wait() = 0;
};

struct AdamWArgs {
  double lr = 0, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0;
  int64_t step = 1;         // 1-based, for bias correction
  double grad_scale = 1.0;  // gradients are multiplied by this first (clipping)
};

// Which keys each query of one attention call sees. Positions are I32 tensors of slots of the
// packed sample (a token's index in the sequence, or in the padded per-document layout of
// parallel.cp_sharding = doc_zigzag): key j is visible to query i of batch row b iff
//   q_start[b, i] <= kpos[b, j] <= qpos[b, i]
// where q_start is the first slot of the query's document (data.reset_attention_mask); an empty
// q_start means plain causal attention. Each tensor holds one row [T] shared by the B rows, or one
// row per sequence [B, T] (numel B * T). The kernels skip key tiles that no query of a tile can
// see. Built per micro-batch from the host descriptor attention/attention_meta.h.
struct AttnMask {
  Tensor qpos, kpos, q_start;
};

// The index map of Ops::permute_copy: a gather over up to 5 dims (unused leading dims are 1).
//   dst[i0, .., i4] = src[i0 * strides[0] + .. + i4 * strides[4]]
// dst is contiguous with shape dims; strides are in elements of src, >= 0 (a stride 0 repeats a
// source element: K/V heads replicated to several ranks). Any permutation of a row-major tensor,
// any slice of one, and a broadcast are such maps.
struct CopyMap {
  int64_t dims[5] = {1, 1, 1, 1, 1};
  int64_t strides[5] = {0, 0, 0, 0, 0};
  int64_t numel() const { return dims[0] * dims[1] * dims[2] * dims[3] * dims[4]; }
  int64_t max_offset() const;  // the largest source offset read (-1 when empty)
  // From innermost-last lists of (size, stride) pairs, at most 5 (padded in front with 1s).
  static CopyMap of(std::initializer_list<std::pair<int64_t, int64_t>> dims_strides);
};
// Checks dst / src of a permute_copy (same dtype, dst numel = map numel, src holds every offset,
// no overlap); throws Error with the shapes otherwise.
void check_permute_copy(const Tensor& dst, const Tensor& src, const CopyMap& m);

class Ops {
 public:
  virtual ~Ops() = default;
  virtual std::string name() const = 0;
  virtual DType act_dtype() const = 0;
  virtual DType acc_dtype() const = 0;

  // ---- memory --------------------------------------------------------------------------------
  virtual void* alloc(size_t bytes, Mem kind = Mem::Activations) = 0;  // zero-initialised
  virtual void free(void* p) = 0;
  // Host memory for offloaded state (pinned on cuda, so copies to and from it are asynchronous),
  // counted apart from device memory (host_memory()). Zero-initialised.
  virtual void* alloc_host(size_t bytes, Mem kind) = 0;
  virtual void free_host(void* p) = 0;
  virtual void to_host(void* dst, const Tensor& src) = 0;    // raw bytes
  virtual void from_host(Tensor dst, const void* src) = 0;  // raw bytes
  virtual void zero(Tensor t) = 0;
  // dst = src with dtype conversion (same element count).
  virtual void convert(Tensor dst, const Tensor& src) = 0;
  virtual void synchronize() = 0;
  // Device bytes held through alloc() (host_memory: through alloc_host()), by category.
  virtual MemoryUse device_memory() const = 0;
  virtual MemoryUse host_memory() const = 0;
  // What the device itself reports in use (cuda: cudaMemGetInfo's total - free, every process and
  // context on it included); -1 where there is no such device (cpu).
  virtual int64_t device_used_bytes() const { return -1; }
  int64_t allocated_bytes() const { return device_memory().now; }
  int64_t peak_allocated_bytes() const { return device_memory().peak; }
  // Asynchronous copies between device tensors and host memory (alloc_host() memory on cuda: a
  // copy stream ordered after the compute issued so far). to_host_async: wait() returns when dst
  // holds the data and src may be overwritten. from_host_async: wait() orders the ops issued after
  // it behind the copy (they see dst; src may be reused). The default copies at once (cpu).
  virtual std::unique_ptr<PendingCopy> to_host_async(void* dst, const Tensor& src);
  virtual std::unique_ptr<PendingCopy> from_host_async(Tensor dst, const void* src);

  // ---- embedding -----------------------------------------------------------------------------
  // out[N, C] = wte[tokens[n] - vocab_begin] for ids in this rank's slice [vocab_begin, + V_local),
  // zero rows otherwise (the tensor-parallel all-reduce completes them).
  virtual void embedding_forward(Tensor out, const Tensor& tokens, const Tensor& wte, int64_t vocab_begin) = 0;
  // dwte[tokens[n] - vocab_begin] += dout[n] for ids in the slice.
  virtual void embedding_backward(Tensor dwte, const Tensor& dout, const Tensor& tokens, int64_t vocab_begin) = 0;

  // ---- RMSNorm (HF Llama: y = w * x / sqrt(mean(x^2) + eps)) -------------------------------
  // x, y: [N, C] act; w: [C] act; rstd: [N] acc.
  virtual void rmsnorm_forward(Tensor y, Tensor rstd, const Tensor& x, const Tensor& w, double eps) = 0;
  // dx += d/dx, dw += d/dw (dx accumulates: it is the residual stream's gradient).
  virtual void rmsnorm_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                                const Tensor& rstd) = 0;

  // ---- linear --------------------------------------------------------------------------------
  // y[N, M] = x[N, K] W[M, K]^T, or y += ... when accumulate.
  virtual void matmul_forward(Tensor y, const Tensor& x, const Tensor& w, bool accumulate = false) = 0;
  // dx[N, K] = dy W (or += when accumulate_dx; skipped when dx is empty); dw[M, K] += dy^T x.
  virtual void matmul_backward(Tensor dx, Tensor dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                               bool accumulate_dx = false) = 0;

  // ---- RoPE (rotate-half pairing (i, i + D/2), as HF Llama) ----------------------------------
  // x: [B, T, H, D] act, rotated in place; cos, sin: [T, D/2] acc for the T local positions, or
  // [B, T, D/2] with a table per sequence (positions that restart at each document).
  virtual void rope_forward(Tensor x, const Tensor& cos, const Tensor& sin) = 0;
  // The transpose rotation, in place on the gradient.
  virtual void rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin) = 0;

  // ---- attention (one query block against one key/value block) -------------------------------
  // q: [B, Tq, Hq, D] act; k, v: [B, Tk, Hkv, D] act (GQA: query head h reads kv head h / (Hq/Hkv));
  // mask: positions (see AttnMask). Blockwise online softmax, no Tq x Tk buffer.
  // out: [B, Tq, Hq, D] acc, normalised over the visible keys of this block;
  // lse: [B, Hq, Tq] acc, log-sum-exp of the scaled scores (-inf where no key is visible; out = 0 there).
  virtual void attention_forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v,
                                 const AttnMask& mask) = 0;
  // Plain causal attention with qpos [Tq], kpos [Tk] shared by the batch rows.
  void attention_forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v,
                         const Tensor& qpos, const Tensor& kpos) {
    attention_forward(out, lse, q, k, v, AttnMask{qpos, kpos, Tensor()});
  }
  // Merges a block's partial result into the running one (both acc):
  // lse' = log(e^lse + e^lse_b); out' = e^(lse - lse') out + e^(lse_b - lse') out_b; -inf safe.
  virtual void attention_merge(Tensor out, Tensor lse, const Tensor& out_b, const Tensor& lse_b) = 0;
  // With the FINAL out and lse of the query rows (acc), accumulates this block's contribution:
  // dq += ..., dk += ..., dv += ... (all acc; dk/dv shaped like k/v). dout is act.
  virtual void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q,
                                  const Tensor& k, const Tensor& v, const AttnMask& mask, const Tensor& out,
                                  const Tensor& lse) = 0;
  void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q, const Tensor& k,
                          const Tensor& v, const Tensor& qpos, const Tensor& kpos, const Tensor& out,
                          const Tensor& lse) {
    attention_backward(dq, dk, dv, dout, q, k, v, AttnMask{qpos, kpos, Tensor()}, out, lse);
  }

  // ---- SwiGLU --------------------------------------------------------------------------------
  // h = silu(gate) * up; all [N, F] act.
  virtual void swiglu_forward(Tensor h, const Tensor& gate, const Tensor& up) = 0;
  // dgate, dup = (overwritten).
  virtual void swiglu_backward(Tensor dgate, Tensor dup, const Tensor& dh, const Tensor& gate, const Tensor& up) = 0;

  // ---- residual add --------------------------------------------------------------------------
  virtual void add_forward(Tensor y, const Tensor& a, const Tensor& b) = 0;  // y = a + b (y may alias a)
  virtual void add_backward(Tensor da, Tensor db, const Tensor& dy) = 0;     // da += dy; db += dy

  // ---- LM head + cross-entropy (fused, chunked over tokens: no [N, V] logits buffer) ---------
  // logits = x[N, C] W[V_local, C]^T over this rank's vocabulary slice [vocab_begin, + V_local).
  // Only the first vocab_valid rows of W are vocabulary (< 0: all); the rest is padding that keeps
  // the GEMMs aligned (model.make_vocab_size_divisible_by): its logits are masked, it gets no gradient.
  // stats[N, 3] acc = (max logit, sum exp(logit - max), logit of the target if it lies in the
  // slice else 0); targets < 0 are ignored positions.
  virtual void lmhead_loss_forward(Tensor stats, const Tensor& x, const Tensor& w, const Tensor& targets,
                                   int64_t vocab_begin, int64_t vocab_valid = -1) = 0;
  // Combines the stats of P vocabulary slices (stats_all [P, N, 3]) into lse[N] (acc) and returns
  // the summed loss over non-ignored positions, sum_n (lse_n - target_logit_n).
  virtual double lmhead_loss_combine(Tensor lse, const Tensor& stats_all, const Tensor& targets) = 0;
  // dlogits = (softmax(logits) - onehot(target)) * scale for non-ignored rows, recomputed chunk by
  // chunk; dx[N, C] = dlogits W (overwritten); dw += dlogits^T x.
  virtual void lmhead_loss_backward(Tensor dx, Tensor dw, const Tensor& x, const Tensor& w, const Tensor& targets,
                                    const Tensor& lse, double scale, int64_t vocab_begin, int64_t vocab_valid = -1) = 0;

  // ---- strided copy (the head <-> sequence reshuffles of all-to-all context parallelism) -------
  // dst (contiguous) = the gather `m` of src (CopyMap above), or dst += it when accumulate (the
  // backward sums the dK/dV of replicated K/V heads into their one head with a call per replica).
  // dst and src have the same dtype (act or acc; cuda: bf16 or f32) and do not overlap.
  virtual void permute_copy(Tensor dst, const Tensor& src, const CopyMap& m, bool accumulate = false) = 0;

  // ---- optimizer and reductions (flat acc vectors) ------------------------------------------
  // AdamW with decoupled weight decay: p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p).
  virtual void adamw_update(Tensor param, Tensor m, Tensor v, const Tensor& grad, const AdamWArgs& a) = 0;
  // p -= lr * (grad * grad_scale + wd * p).
  virtual void sgd_update(Tensor param, const Tensor& grad, double lr, double weight_decay, double grad_scale) = 0;
  virtual double sum_squares(const Tensor& x) = 0;  // in double; NaN/Inf propagate
  virtual void scale(Tensor x, double a) = 0;
  virtual void axpy(Tensor y, double a, const Tensor& x) = 0;  // y += a x
};

// The cpu backend: T = float (training) or double (gradient checks). attn_block sets the blockwise
// attention tile (rows of Q and of K/V per tile).
std::unique_ptr<Ops> make_cpu_ops(DType dtype, int attn_block = 64);

// Whether this build has the cuda backend and a usable GPU; `why` explains a false answer.
bool cuda_available(std::string* why = nullptr);
// Visible CUDA devices (0 in a build without CUDA or without a driver).
int cuda_device_count();
// The cuda backend on the given visible device index (bf16 compute, fp32 accumulators).
// Throws an Error when the build has no CUDA or no GPU can be used.
std::unique_ptr<Ops> make_cuda_ops(int device_index);

// "cpu" or "cuda": the backend a deck's run.device names; attention_impl is model.attention_impl
// (own | cudnn; cudnn needs cuda).
std::unique_ptr<Ops> make_ops(const std::string& device, int device_index = 0, int attn_block = 64,
                              const std::string& attention_impl = "own");

}  // namespace lct
