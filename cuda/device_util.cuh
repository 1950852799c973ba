// Device helpers shared by the .cu files: bf16 conversion that matches the host bit for bit,
// warp/block reductions, grid sizing.
#pragma once

#include "cuda/device_api.cuh"

#include <cstdint>

#include "cuda/cuda_check.h"

namespace lct::cuda {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float bf2f(bf16 h) { return __bfloat162float(h); }

// Round to nearest even, NaN kept quiet as core/tensor.h float_to_bf16 does it.
__device__ __forceinline__ bf16 f2bf(float f) {
  uint32_t u = __float_as_uint(f);
  uint16_t r;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    r = uint16_t((u >> 16) | 0x40u);
  } else {
    u += 0x7fffu + ((u >> 16) & 1u);
    r = uint16_t(u >> 16);
  }
  return __ushort_as_bfloat16(r);
}

template <class T> __device__ __forceinline__ T warp_sum(T x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `red` is shared scratch of 32 elements; the function synchronises before returning.
template <class T> __device__ T block_sum(T x, T* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  x = warp_sum(x);
  __syncthreads();  // red may still be read by a previous call
  if (lane == 0) red[warp] = x;
  __syncthreads();
  T t = lane < nw ? red[lane] : T(0);
  return warp_sum(t);
}

// Grid size for a grid-stride loop over n items with `threads` per block.
inline unsigned grid_for(int64_t n, int threads, int64_t max_blocks = 65535LL * 16) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > max_blocks) b = max_blocks;
  return unsigned(b);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace lct::cuda
