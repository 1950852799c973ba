// Host-callable launchers of the CUDA kernels (elementwise.cu, attention.cu, lmhead_optim.cu).
// Plain pointers and sizes; every launcher enqueues on `s` and checks the launch. Shapes and
// dtypes are validated by the caller (cuda_ops.cpp), which owns the scratch buffers passed in.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/tensor.h"

namespace lct::cuda {

using bf16 = __nv_bfloat16;

// ---- conversions and elementwise (elementwise.cu) -------------------------------------------
// cudaSuccess when this build has a kernel image for the current device.
cudaError_t probe_kernel_image();
// dst = src with round-to-nearest-even to bf16, bit-identical to core/tensor.h float_to_bf16.
void convert(void* dst, DType dst_t, const void* src, DType src_t, int64_t n, cudaStream_t s);

void embedding_forward(bf16* out, const int32_t* tokens, const bf16* wte, int64_t N, int64_t C, int64_t vocab_begin,
                       int64_t V, cudaStream_t s);
void embedding_backward(float* dwte, const bf16* dout, const int32_t* tokens, int64_t N, int64_t C,
                        int64_t vocab_begin, int64_t V, cudaStream_t s);

void rmsnorm_forward(bf16* y, float* rstd, const bf16* x, const bf16* w, int64_t N, int64_t C, float eps,
                     cudaStream_t s);
// dx += ..., dw += ... (blocks accumulate dw partial sums in shared memory, then atomically).
void rmsnorm_backward(bf16* dx, float* dw, const bf16* dy, const bf16* x, const bf16* w, const float* rstd,
                      int64_t N, int64_t C, int num_sms, cudaStream_t s);

// x [B, T, H, D]; cos/sin hold table_rows rows of D/2: T (shared by the sequences) or B * T.
void rope_apply(bf16* x, const float* cos, const float* sin, int64_t B, int64_t T, int64_t H, int64_t D,
                int64_t table_rows, bool transpose, cudaStream_t s);

void swiglu_forward(bf16* h, const bf16* gate, const bf16* up, int64_t n, cudaStream_t s);
void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dh, const bf16* gate, const bf16* up, int64_t n,
                     cudaStream_t s);

void add_forward(bf16* y, const bf16* a, const bf16* b, int64_t n, cudaStream_t s);

// The gather of ops.h CopyMap (dims, element strides of src) on f32 or bf16 tensors; accumulate:
// dst += (bf16: in f32, rounded once).
struct CopyDims {
  int64_t dims[5], strides[5];
};
void permute_copy(void* dst, const void* src, DType t, const CopyDims& m, bool accumulate, cudaStream_t s);
void add_backward(bf16* da, bf16* db, const bf16* dy, int64_t n, cudaStream_t s);

// ---- LM head rows, optimizer, reductions (lmhead_optim.cu) ---------------------------------
// Per row of a [rows, ld] f32 logits tile whose first V columns are vocabulary (the rest padding):
// stats[r] = (max, sum exp(l - max), target logit or 0) over the V columns.
void lmhead_row_stats(float* stats, const float* logits, const int32_t* targets, int64_t rows, int64_t ld, int64_t V,
                      int64_t vocab_begin, cudaStream_t s);
// dlogits[r] = (exp(l - lse[r]) - onehot(target)) * scale in bf16 for the V vocabulary columns;
// zero in padding columns and in rows of ignored targets.
void lmhead_dlogits(bf16* dlogits, const float* logits, const int32_t* targets, const float* lse, float scale,
                    int64_t rows, int64_t ld, int64_t V, int64_t vocab_begin, cudaStream_t s);
// lse[n] from stats_all [P, N, 3]; writes per-block loss partial sums (double) into `partials`
// and returns how many there are (at most lmhead_combine_max_partials(N)).
int lmhead_combine(float* lse, double* partials, const float* stats_all, const int32_t* targets, int64_t P,
                   int64_t N, cudaStream_t s);
int64_t lmhead_combine_max_partials(int64_t N);

struct AdamWScalars {
  float lr, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay, bias_corr1, bias_corr2,
      grad_scale;
};
void adamw_update(float* p, float* m, float* v, const float* g, int64_t n, const AdamWScalars& a, cudaStream_t s);
void sgd_update(float* p, const float* g, int64_t n, float lr, float weight_decay, float grad_scale,
                cudaStream_t s);
// Sum of squares in double: per-block partials (a fixed grid for a given n, so the result is
// reproducible); returns the number of partials written (at most sum_squares_max_partials()).
int sum_squares(double* partials, const void* x, DType t, int64_t n, cudaStream_t s);
constexpr int sum_squares_max_partials() { return 1024; }
void scale(void* x, DType t, int64_t n, double a, cudaStream_t s);
void axpy(void* y, DType ty, double a, const void* x, DType tx, int64_t n, cudaStream_t s);

// ---- attention (attention.cu) ---------------------------------------------------------------
struct AttnDims {
  int64_t B, Tq, Tk, Hq, Hkv, D;
};
// The positions of one call (ops.h AttnMask) as device pointers: key j is visible to query i of
// row b iff qstart[b, i] <= kpos[b, j] <= qpos[b, i] (qstart null: plain causal). A stride is 0
// when one row of positions serves every batch row, else the row length (Tq or Tk).
struct AttnPositions {
  const int32_t *qpos = nullptr, *kpos = nullptr, *qstart = nullptr;
  int64_t q_stride = 0, k_stride = 0;
};
// Head dims with compiled kernels.
bool attention_head_dim_supported(int64_t D);
// Scratch (int32 elements) the attention kernels need for per-tile position bounds, and
// (floats) for the backward's row sums delta = rowsum(dO * O).
int64_t attention_bounds_ints(const AttnDims& d, const AttnPositions& p);
int64_t attention_delta_floats(const AttnDims& d);
// out/lse written (not accumulated): the block's normalised output and log-sum-exp.
void attention_forward(float* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnPositions& p,
                       const AttnDims& d, int32_t* bounds_scratch, cudaStream_t s);
// dq, dk, dv (f32) accumulate.
void attention_backward(float* dq, float* dk, float* dv, const bf16* dout, const bf16* q, const bf16* k,
                        const bf16* v, const AttnPositions& p, const float* out, const float* lse,
                        const AttnDims& d, int32_t* bounds_scratch, float* delta_scratch, cudaStream_t s);
// Log-sum-exp merge of a partial result into rows [row0, row0 + Tb) of the running (out, lse):
// out [B, Tq, H, D], lse [B, H, Tq]; out_b [B, Tb, H, D] (f32 or bf16), lse_b [B, H, Tb].
void attention_merge(float* out, float* lse, const void* out_b, DType out_b_t, const float* lse_b, int64_t B,
                     int64_t Tq, int64_t row0, int64_t Tb, int64_t H, int64_t D, cudaStream_t s);

// ---- small helpers for the cuDNN path (elementwise.cu) -------------------------------------
// dst[b, row0 + r, :] += src[b, r, :] for a [B, T, W] f32 destination and a [B, n, W] bf16 source.
void add_rows_bf16_to_f32(float* dst, int64_t T, int64_t row0, const bf16* src, int64_t n, int64_t B, int64_t W,
                          cudaStream_t s);
// p[i] = v.
void fill_f32(float* p, float v, int64_t n, cudaStream_t s);
// dst[b, h, r] = src[b, h, row0 + r] (packs a row range of a [B, H, T] f32 tensor).
void gather_rows_bhT(float* dst, const float* src, int64_t B, int64_t H, int64_t T, int64_t row0, int64_t n,
                     cudaStream_t s);

}  // namespace lct::cuda
