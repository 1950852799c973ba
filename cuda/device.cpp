// GPU discovery: whether a usable GPU exists (driver, device, compute capability >= 8.0, a
// kernel image for it in this build, cuBLASLt), and which visible device a rank uses.
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdlib>

#include "cuda/cuda_check.h"
#include "cuda/cuda_ops.h"
#include "cuda/kernels.h"

namespace lct {
namespace cuda {

void throw_gpu_error(const char* call, const char* file, int line, const std::string& detail) {
  // A failed runtime call is also the thread's "last error": clear it, or the next launch check
  // (LCT_CUDA_LAUNCH reads cudaGetLastError) would blame an unrelated kernel for it.
  cudaGetLastError();
  throw Error(kExitFailure, str(call, " failed at ", file, ":", line, ": ", detail));
}


}  // namespace cuda

namespace {
std::string visible_devices_note() {
  const char* v = std::getenv("CUDA_VISIBLE_DEVICES");
  return v ? str(" (CUDA_VISIBLE_DEVICES=", v, ")") : std::string(" (CUDA_VISIBLE_DEVICES unset)");
}
}  // namespace

bool cuda_available(std::string* why) {
  auto fail = [&](const std::string& msg) {
    if (why) *why = msg;
    cudaGetLastError();  // clear the sticky-free error state for later callers
    return false;
  };
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess)
    return fail(str("cudaGetDeviceCount failed: ", cuda::cuda_error_text(e), visible_devices_note()));
  if (n == 0) return fail(str("no CUDA device is visible", visible_devices_note()));
  cudaDeviceProp prop{};
  e = cudaGetDeviceProperties(&prop, 0);
  if (e != cudaSuccess) return fail(str("cudaGetDeviceProperties(0) failed: ", cuda::cuda_error_text(e)));
  if (prop.major < 8)
    return fail(str("GPU 0 (", prop.name, ") is sm_", prop.major, prop.minor,
                    "; the cuda backend needs sm_80 or newer (bf16 tensor cores)"));
  e = cuda::probe_kernel_image();
  if (e != cudaSuccess)
    return fail(str("this build has no kernel image for GPU 0 (", prop.name, ", sm_", prop.major, prop.minor,
                    "): ", cuda::cuda_error_text(e), "; rebuild with -DLCT_CUDA_ARCHITECTURES including ",
                    prop.major, prop.minor));
  cublasLtHandle_t h = nullptr;
  const cublasStatus_t st = cublasLtCreate(&h);
  if (st != CUBLAS_STATUS_SUCCESS) return fail(str("cublasLtCreate failed: ", cublasLtGetStatusString(st)));
  cublasLtDestroy(h);
  if (why) why->clear();
  return true;
}

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

int cuda_device_for_local_rank(int local_rank, int local_size) {
  int n = 0;
  LCT_CUDA_CHECK(cudaGetDeviceCount(&n));
  if (n == 1) return 0;
  if (local_rank < n) {
    if (local_size > n)
      throw InputError(str(local_size, " ranks on this node but ", n, " visible GPUs", visible_devices_note(),
                           ": run one rank per GPU (e.g. srun --gpus-per-task=1 or --ntasks-per-node=", n, ")"));
    return local_rank;
  }
  throw InputError(str("node-local rank ", local_rank, " has no GPU: ", n, " visible", visible_devices_note(),
                       "; run at most one rank per GPU"));
}

}  // namespace lct
