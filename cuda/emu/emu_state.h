// State the emulated device, runtime and cuBLASLt share (cuda/emu/*.cpp): the fake device's
// limits, the last-error slot, kernel attributes, streams and the device allocations.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace lct::emu {

// The emulated device: an sm_90 part with H100 SXM limits (what cuda_ops.cpp and the launches
// are checked against).
constexpr int kSmCount = 132;
constexpr size_t kSmemPerBlockDefault = 48 * 1024;  // dynamic shared memory without opting in
constexpr size_t kSmemPerBlockOptin = 232448;       // cudaDevAttrMaxSharedMemoryPerBlockOptin
constexpr size_t kDeviceMemoryBytes = size_t(16) << 30;  // what cudaMalloc hands out, in total

// Records `e` as the error cudaGetLastError will return (unless it is cudaSuccess); returns e.
cudaError_t record(cudaError_t e);
// Dynamic shared memory a launch of `kernel` may use (cudaFuncSetAttribute raises it).
size_t max_dynamic_smem(const void* kernel);
// A stream handle from cudaStreamCreate*, or the legacy default stream.
bool stream_ok(cudaStream_t s);
// Bytes from `p` to the end of the device allocation that holds it; 0 if none does.
size_t device_bytes_from(const void* p);

// Prints "cuda_emu: ..." and aborts: for what the hardware would not report as an error code
// (undefined behaviour of a kernel, an emulator limit).
[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace lct::emu
