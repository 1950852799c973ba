// Error checks for the CUDA runtime: every call is checked, and a failure throws lct::Error
// (exit code 1) naming the call, the file:line and the CUDA error. Kernel launches are checked
// with LCT_CUDA_LAUNCH() right after the <<<...>>> (launch-configuration errors; errors during
// execution surface at the next synchronising call, which is checked too).
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "core/error.h"

namespace lct::cuda {

[[noreturn]] void throw_gpu_error(const char* call, const char* file, int line, const std::string& detail);

inline std::string cuda_error_text(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

}  // namespace lct::cuda

#define LCT_CUDA_CHECK(call)                                                                    \
  do {                                                                                          \
    cudaError_t lct_e_ = (call);                                                                \
    if (lct_e_ != cudaSuccess)                                                                  \
      ::lct::cuda::throw_gpu_error(#call, __FILE__, __LINE__, ::lct::cuda::cuda_error_text(lct_e_)); \
  } while (0)

#define LCT_CUDA_LAUNCH(what)                                                                   \
  do {                                                                                          \
    cudaError_t lct_e_ = cudaGetLastError();                                                    \
    if (lct_e_ != cudaSuccess)                                                                  \
      ::lct::cuda::throw_gpu_error(::lct::str("launch of ", what).c_str(), __FILE__, __LINE__,  \
                                   ::lct::cuda::cuda_error_text(lct_e_));                       \
  } while (0)
