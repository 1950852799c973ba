// GEMMs through cuBLASLt: bf16 (or f32) inputs, fp32 compute, bf16 or f32 output. The matmul
// descriptor, the three matrix layouts and the algorithm chosen by the heuristic are built once
// per (shape, transposes, dtypes, leading dimensions, pointer alignments) and cached.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>

#include "core/tensor.h"

namespace lct::cuda {

class Gemm {
 public:
  Gemm(cudaStream_t stream, size_t workspace_bytes = size_t(32) << 20);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // Row-major C[M, N] = alpha * opA(A) opB(B) + beta * C, where A is stored [M, K] ([K, M] when
  // trans_a) and B is stored [K, N] ([N, K] when trans_b), all contiguous.
  void rowmajor(int64_t M, int64_t N, int64_t K, const void* A, DType at, bool trans_a, const void* B, DType bt,
                bool trans_b, void* C, DType ct, float alpha, float beta);

  size_t cached_plans() const;
  size_t workspace_bytes() const { return workspace_bytes_; }

 private:
  // Column-major D(m x n) = alpha op(A) op(B) + beta D.
  void colmajor(int64_t m, int64_t n, int64_t k, bool ta, const void* A, DType at, int64_t lda, bool tb,
                const void* B, DType bt, int64_t ldb, void* D, DType dt, int64_t ldd, float alpha, float beta);

  using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool, int, int, int, int64_t, int64_t, int64_t, int, int, int>;
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };

  cudaStream_t stream_;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_;
  mutable std::mutex mu_;
  std::map<Key, Plan> plans_;
};

}  // namespace lct::cuda
