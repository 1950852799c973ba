// The CUDA emulator's own checks (cuda/emu/): that it reports what the hardware would not forgive
// and refuses what the real libraries refuse, so a kernel or host-code defect cannot pass
// test_cuda_ops_emulated by the emulator being lenient. Kernels here are written against
// cuda/device_api.cuh exactly as in cuda/*.cu.
#include "cuda/device_api.cuh"

#include <cublasLt.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace {

using bf16 = __nv_bfloat16;

// ---- kernels -------------------------------------------------------------------------------------
__global__ void shuffle_after_exit(float* out) {
  if (threadIdx.x == 3) return;  // lane 3 leaves, the rest of the warp shuffles with the full mask
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

// Thread 32 waits for its warp at __syncwarp while the rest of that warp waits at __syncthreads.
__global__ void barrier_in_branch(float* out) {
  if (threadIdx.x == 32) __syncwarp();
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

// `stop` is all zeros: the recursion never ends.
__device__ float runaway(const float* stop, int depth) {
  return stop[depth & 1] > 0.0f ? 0.0f : runaway(stop, depth + 1) + 1.0f;
}
__global__ void recursive_kernel(float* out) { out[threadIdx.x] = runaway(out + 32, 0); }

// Thread 0 copies 16 bytes with cp.async and reads the destination before and after the wait.
__global__ void cp_async_visibility(const float* src, float* before, float* after) {
  LCT_DYNAMIC_SMEM(float, s);
  if (threadIdx.x != 0) return;
  lct::cuda::cp_async16(s, src, true);
  lct::cuda::cp_async_commit();
  for (int i = 0; i < 4; ++i) before[i] = s[i];
  lct::cuda::cp_async_wait<0>();
  for (int i = 0; i < 4; ++i) after[i] = s[i];
}

__global__ void uses_smem(float* out, int n) {
  LCT_DYNAMIC_SMEM(float, s);
  for (int i = threadIdx.x; i < n; i += blockDim.x) s[i] = float(i);
  __syncthreads();
  if (threadIdx.x == 0) out[0] = s[n - 1];
}

// One m16n8k16: lanes load A (16x16 row-major) and B (16x8, B[k][n]) in the PTX fragment layout.
__global__ void one_mma(const bf16* A, const bf16* B, float* C) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  auto pk = [](const bf16* lo, const bf16* hi) {
    return uint32_t(__bfloat16_as_ushort(*lo)) | (uint32_t(__bfloat16_as_ushort(*hi)) << 16);
  };
  const uint32_t a[4] = {pk(A + g * 16 + 2 * t, A + g * 16 + 2 * t + 1),
                         pk(A + (g + 8) * 16 + 2 * t, A + (g + 8) * 16 + 2 * t + 1),
                         pk(A + g * 16 + 2 * t + 8, A + g * 16 + 2 * t + 9),
                         pk(A + (g + 8) * 16 + 2 * t + 8, A + (g + 8) * 16 + 2 * t + 9)};
  const uint32_t b0 = pk(B + (2 * t) * 8 + g, B + (2 * t + 1) * 8 + g);
  const uint32_t b1 = pk(B + (2 * t + 8) * 8 + g, B + (2 * t + 9) * 8 + g);
  float c[4] = {0, 0, 0, 0};
  lct::cuda::mma_bf16(c, a, b0, b1);
  C[g * 8 + 2 * t] = c[0];
  C[g * 8 + 2 * t + 1] = c[1];
  C[(g + 8) * 8 + 2 * t] = c[2];
  C[(g + 8) * 8 + 2 * t + 1] = c[3];
}

template <class T> T* device(size_t n) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
  return static_cast<T*>(p);
}

// ---- tests ----------------------------------------------------------------------------------------
TEST(CudaEmulatorDeathTest, ShuffleNamingAnExitedLaneAborts) {
  float* out = device<float>(32);
  EXPECT_DEATH(LCT_KERNEL_LAUNCH(shuffle_after_exit, 1, 32, 0, nullptr, out), "has exited");
}

TEST(CudaEmulatorDeathTest, BarrierSomeThreadsNeverReachIsADeadlock) {
  float* out = device<float>(64);
  EXPECT_DEATH(LCT_KERNEL_LAUNCH(barrier_in_branch, 1, 64, 0, nullptr, out), "deadlock");
}

TEST(CudaEmulatorDeathTest, RunawayRecursionIsReported) {
  float* out = device<float>(34);
  ASSERT_EQ(cudaMemset(out, 0, 34 * sizeof(float)), cudaSuccess);
  EXPECT_DEATH(LCT_KERNEL_LAUNCH(recursive_kernel, 1, 32, 0, nullptr, out), "overflowed its");
}

TEST(CudaEmulator, CpAsyncLandsOnlyAtTheWait) {
  const float h[4] = {1, 2, 3, 4};
  float *src = device<float>(4), *before = device<float>(4), *after = device<float>(4);
  ASSERT_EQ(cudaMemcpy(src, h, sizeof h, cudaMemcpyHostToDevice), cudaSuccess);
  LCT_KERNEL_LAUNCH(cp_async_visibility, 1, 32, 64, nullptr, src, before, after);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  float b[4], a[4];
  ASSERT_EQ(cudaMemcpy(b, before, sizeof b, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(a, after, sizeof a, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(std::isnan(b[i])) << "shared memory before the wait holds the 0xFF fill (NaN), got " << b[i];
    EXPECT_EQ(a[i], h[i]);
  }
}

TEST(CudaEmulator, DynamicSharedMemoryAbove48KbNeedsTheAttribute) {
  const int n = 16 * 1024;  // 64 KB of floats
  float* out = device<float>(1);
  cudaGetLastError();
  LCT_KERNEL_LAUNCH(uses_smem, 1, 128, n * sizeof(float), nullptr, out, n);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  ASSERT_EQ(cudaFuncSetAttribute(uses_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, int(n * sizeof(float))),
            cudaSuccess);
  LCT_KERNEL_LAUNCH(uses_smem, 1, 128, n * sizeof(float), nullptr, out, n);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  float r = 0;
  ASSERT_EQ(cudaMemcpy(&r, out, sizeof r, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(r, float(n - 1));
  // More than the device's opt-in maximum is refused outright.
  EXPECT_EQ(cudaFuncSetAttribute(uses_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, 300 * 1024),
            cudaErrorInvalidValue);
}

TEST(CudaEmulator, MmaUsesThePtxFragmentLayout) {
  std::vector<bf16> a(256), b(128);
  std::vector<double> want(128, 0.0);
  for (int i = 0; i < 256; ++i) a[size_t(i)] = __float2bfloat16_rn(float((i * 7) % 13) - 6.0f);
  for (int i = 0; i < 128; ++i) b[size_t(i)] = __float2bfloat16_rn(float((i * 5) % 11) - 5.0f);
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 8; ++c)
      for (int k = 0; k < 16; ++k)
        want[size_t(r * 8 + c)] += double(__bfloat162float(a[size_t(r * 16 + k)])) * __bfloat162float(b[size_t(k * 8 + c)]);
  bf16 *da = device<bf16>(256), *db = device<bf16>(128);
  float* dc = device<float>(128);
  ASSERT_EQ(cudaMemcpy(da, a.data(), 512, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(db, b.data(), 256, cudaMemcpyHostToDevice), cudaSuccess);
  LCT_KERNEL_LAUNCH(one_mma, 1, 32, 0, nullptr, da, db, dc);
  std::vector<float> got(128);
  ASSERT_EQ(cudaMemcpy(got.data(), dc, 512, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int i = 0; i < 128; ++i) EXPECT_EQ(double(got[size_t(i)]), want[size_t(i)]) << "C element " << i;
}

TEST(CudaEmulator, CopiesOutsideAnAllocationFail) {
  float* p = device<float>(10);
  std::vector<float> h(11);
  EXPECT_EQ(cudaMemcpy(p, h.data(), 11 * sizeof(float), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(h.data(), p, 10 * sizeof(float), cudaMemcpyHostToDevice), cudaErrorInvalidValue);  // kinds swapped
  EXPECT_EQ(cudaMemsetAsync(p + 5, 0, 6 * sizeof(float), nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);  // failed calls set the last error
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);            // and reading it clears it
  EXPECT_EQ(cudaFree(p + 1), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(p), cudaSuccess);
}

// The heuristic refuses a bf16 leading dimension whose byte size is not a multiple of 16, and
// operands the caller says are less than 16-byte aligned ("no algorithm").
TEST(CudaEmulator, CublasLtHeuristicIsStrictAboutLeadingDimensionsAndAlignment) {
  cublasLtHandle_t h;
  ASSERT_EQ(cublasLtCreate(&h), CUBLAS_STATUS_SUCCESS);
  cublasLtMatmulDesc_t desc;
  ASSERT_EQ(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
  auto found = [&](int64_t lda, uint32_t align) {
    cublasLtMatrixLayout_t a, b, d;
    cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, 64, 32, lda);  // m = 64, k = 32
    cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, 32, 16, 32);
    cublasLtMatrixLayoutCreate(&d, CUDA_R_32F, 64, 16, 64);
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulPreferenceCreate(&pref);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align, sizeof align);
    cublasLtMatmulHeuristicResult_t r{};
    int n = -1;
    cublasLtMatmulAlgoGetHeuristic(h, desc, a, b, d, d, pref, 1, &r, &n);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(d);
    return n;
  };
  EXPECT_EQ(found(64, 256), 1);
  EXPECT_EQ(found(72, 16), 1);
  EXPECT_EQ(found(68, 256), 0) << "ld 68 bf16 = 136 bytes";
  EXPECT_EQ(found(64, 8), 0) << "A only 8-byte aligned";
  cublasLtMatmulDescDestroy(desc);
  cublasLtDestroy(h);
}

}  // namespace
