// The one switch between the real device build and the CPU emulation: every .cu file includes
// this header first and nothing else CUDA-specific, so kernels and device helpers are the same
// source lines for nvcc and for the host compiler (no #ifdef LCT_CUDA_EMULATE anywhere else).
//
// It provides, under the same names in both builds:
//   - the CUDA built-ins (__shfl_xor_sync, atomicAdd, __syncthreads, threadIdx, __shared__, ...):
//     nvcc's own, or cuda/emu/cuda_emu.h's;
//   - PTX wrappers in lct::cuda: mma_bf16 (mma.sync.m16n8k16 bf16 -> f32), cp_async16 (16-byte
//     cp.async, zero-filled when !pred), cp_async_commit, cp_async_wait<N>;
//   - LCT_LAUNCH(kernel, grid, block, smem, stream, args...): the launch and its check (the only
//     place a .cu file writes <<<>>>); a kernel name with template commas goes in parentheses;
//   - LCT_DYNAMIC_SMEM(type, name): `type* name` pointing at the block's dynamic shared memory.
#pragma once

#ifdef LCT_CUDA_EMULATE
#include "cuda/emu/cuda_emu.h"
#else
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace lct::cuda {

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: c += A (16x16, row) * B (16x8, col);
// fragment layouts in cuda/attention.cu's header comment.
__device__ __forceinline__ void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// 16 bytes global -> shared, asynchronously; zero-filled when !pred (nothing is read then).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool pred) {
  const unsigned s = unsigned(__cvta_generic_to_shared(smem));
  const int n = pred ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N of the committed groups are still in flight.
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

}  // namespace lct::cuda

#define LCT_KERNEL_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#define LCT_DYNAMIC_SMEM(type, name)                                   \
  extern __shared__ __align__(16) unsigned char lct_dynamic_smem_[]; \
  type* name = reinterpret_cast<type*>(lct_dynamic_smem_)
#endif

#include "cuda/cuda_check.h"

#define LCT_LAUNCH(kernel, grid, block, smem, stream, ...)                    \
  do {                                                                        \
    LCT_KERNEL_LAUNCH(kernel, grid, block, smem, stream, __VA_ARGS__);        \
    LCT_CUDA_LAUNCH(#kernel);                                                 \
  } while (0)
