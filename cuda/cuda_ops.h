// The cuda backend beyond the Ops interface: attention implementation choice, device choice
// per rank, and access to the stream the ops run on (for NCCL overlap through events).
//
// dtypes (ops/ops.h contract): act = bf16 for activations, their gradients and the weights that
// forward reads; acc = f32 for RMSNorm rstd, attention out/lse/dq/dk/dv, weight gradients (which
// backward ops accumulate into), master weights, optimizer moments, RoPE tables and LM-head
// statistics. sum_squares / scale / axpy / convert / zero also take bf16 tensors.
//
// Every op is enqueued on one CUDA stream per backend object (cuda_stream_of); to_host,
// from_host, alloc and synchronize wait for it. Errors of any CUDA, cuBLASLt or cuDNN call
// throw lct::Error naming the call, file:line and the library's error text.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>

#include "ops/ops.h"

namespace lct {

// model.attention_impl: our tensor-core kernels ("own") or cuDNN's fused SDPA ("cudnn").
enum class AttentionImpl { Own, Cudnn };
AttentionImpl parse_attention_impl(const std::string& name);  // InputError for anything else
const char* attention_impl_name(AttentionImpl impl);

// The cuda backend on visible device `device_index` with the given attention implementation.
// With exactly one visible device (one GPU per task), any index selects it.
std::unique_ptr<Ops> make_cuda_ops(int device_index, AttentionImpl impl);

// The visible device a rank should use: with one visible device (CUDA_VISIBLE_DEVICES or
// --gpus-per-task=1) that one; otherwise the node-local rank, which must be below the count.
int cuda_device_for_local_rank(int local_rank, int local_size);

// The stream a cuda backend enqueues on (throws if `ops` is not a cuda backend).
cudaStream_t cuda_stream_of(Ops& ops);
// Device bytes the backend holds outside alloc(): cuBLASLt workspace, attention tile bounds,
// LM-head logits tiles, cuDNN workspace and temporaries.
int64_t cuda_workspace_bytes(Ops& ops);
// The attention implementation a cuda backend runs.
AttentionImpl cuda_attention_impl(Ops& ops);

}  // namespace lct
