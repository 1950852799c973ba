// cuDNN's fused flash attention (SDPA forward and backward, cuDNN 9 graph/backend API) behind the
// Ops attention contract, as the switchable alternative to our kernels (model.attention_impl =
// cudnn).
//
// cuDNN masks by index (causal top-left), not by explicit positions, and writes bf16 O / dQ / dK
// / dV. So each call copies the positions to the host, splits queries and keys into runs of
// consecutive positions, and covers every pair of runs by at most two cuDNN calls: keys entirely
// in the past of the query run (no mask) and the diagonal part (top-left causal, both runs
// starting at the same position). Partial forward results merge into the f32 out/lse by
// log-sum-exp; backward calls get the FINAL out and lse (so each computes its exact share) and
// their bf16 gradients are added into the f32 dq/dk/dv. Execution plans are cached per shape.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"

namespace lct::cuda {

class CudnnAttention {
 public:
  explicit CudnnAttention(cudaStream_t stream);  // throws InputError when cuDNN cannot be used
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // Whether this build has cuDNN and its runtime library loads; `why` explains a false answer.
  static bool available(std::string* why);

  // Same contracts as Ops::attention_forward / attention_backward (out, lse written; dq, dk, dv
  // accumulated).
  void forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& qpos,
               const Tensor& kpos);
  void backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dout, const Tensor& q, const Tensor& k,
                const Tensor& v, const Tensor& qpos, const Tensor& kpos, const Tensor& out, const Tensor& lse);

  int64_t workspace_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lct::cuda
