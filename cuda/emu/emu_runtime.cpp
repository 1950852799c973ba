// The CUDA runtime API subset the cuda backend calls, for the emulated device (no libcudart in
// an emulated binary). Device memory is host memory, registered so that copies, memsets, frees
// and cuBLASLt operands are checked against the allocation that holds them; every call is
// synchronous (a stream is a name), so a later check sees all earlier work done.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "cuda/emu/emu_state.h"

struct CUstream_st {
  unsigned flags;
};
struct CUevent_st {
  bool recorded = false;
  std::chrono::steady_clock::time_point when;
};

namespace lct::emu {
namespace {

std::mutex g_mu;  // the runtime may be called from several host threads
cudaError_t g_last_error = cudaSuccess;
std::map<uintptr_t, size_t> g_device;  // device allocations: address -> bytes
size_t g_device_used = 0;
std::set<const void*> g_host;          // cudaMallocHost allocations
std::set<cudaStream_t> g_streams;
std::set<cudaEvent_t> g_events;
std::map<const void*, size_t> g_max_smem;  // cudaFuncAttributeMaxDynamicSharedMemorySize
int g_device_index = 0;

// The error a call returns is also the one cudaGetLastError reports next, as in the runtime.
cudaError_t ret(cudaError_t e) {
  if (e != cudaSuccess) g_last_error = e;
  return e;
}

// Bytes from p to the end of its device allocation (0: not device memory). Caller holds g_mu.
size_t device_span(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_device.upper_bound(a);
  if (it == g_device.begin()) return 0;
  --it;
  return a < it->first + it->second ? it->first + it->second - a : 0;
}

bool is_device(const void* p, size_t bytes) { return device_span(p) >= bytes && device_span(p) > 0; }

}  // namespace

cudaError_t record(cudaError_t e) {
  std::lock_guard<std::mutex> lock(g_mu);
  return ret(e);
}

size_t max_dynamic_smem(const void* kernel) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_max_smem.find(kernel);
  return it == g_max_smem.end() ? kSmemPerBlockDefault : it->second;
}

bool stream_ok(cudaStream_t s) {
  std::lock_guard<std::mutex> lock(g_mu);
  return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread || g_streams.count(s) > 0;
}

size_t device_bytes_from(const void* p) {
  std::lock_guard<std::mutex> lock(g_mu);
  return device_span(p);
}

}  // namespace lct::emu

using namespace lct::emu;

extern "C" {

// ---- errors -------------------------------------------------------------------------------------
cudaError_t cudaGetLastError() {
  std::lock_guard<std::mutex> lock(g_mu);
  const cudaError_t e = g_last_error;
  g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_last_error;
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    default: return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    default: return "unknown error (emulated runtime)";
  }
}

// ---- device -------------------------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* n) {
  if (!n) return record(cudaErrorInvalidValue);
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (d != 0) return ret(cudaErrorInvalidDevice);
  g_device_index = d;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!d) return ret(cudaErrorInvalidValue);
  *d = g_device_index;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (!p) return record(cudaErrorInvalidValue);
  if (d != 0) return record(cudaErrorInvalidDevice);
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof p->name, "lctrain CUDA emulator (sm_90)");
  p->totalGlobalMem = kDeviceMemoryBytes;
  p->sharedMemPerBlock = kSmemPerBlockDefault;
  p->sharedMemPerBlockOptin = kSmemPerBlockOptin;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1;  // the emulator runs one-dimensional blocks
  p->maxThreadsDim[2] = 1;
  p->maxGridSize[0] = 0x7fffffff;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->multiProcessorCount = kSmCount;
  p->major = 9;
  p->minor = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int d) {
  if (!v) return record(cudaErrorInvalidValue);
  if (d != 0) return record(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *v = kSmCount; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *v = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *v = 0; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = int(kSmemPerBlockOptin); return cudaSuccess;
    case cudaDevAttrMaxThreadsPerBlock: *v = 1024; return cudaSuccess;
    default: return record(cudaErrorInvalidValue);
  }
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

// ---- memory ---------------------------------------------------------------------------------------
cudaError_t cudaMalloc(void** p, size_t bytes) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!p) return ret(cudaErrorInvalidValue);
  *p = nullptr;
  if (bytes == 0) return cudaSuccess;
  if (bytes > kDeviceMemoryBytes - g_device_used) return ret(cudaErrorMemoryAllocation);
  // The runtime's allocations are 256-byte aligned.
  void* m = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (!m) return ret(cudaErrorMemoryAllocation);
  g_device[reinterpret_cast<uintptr_t>(m)] = bytes;
  g_device_used += bytes;
  *p = m;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!p) return cudaSuccess;
  auto it = g_device.find(reinterpret_cast<uintptr_t>(p));
  if (it == g_device.end()) return ret(cudaErrorInvalidValue);  // not the start of an allocation
  g_device_used -= it->second;
  g_device.erase(it);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!p) return ret(cudaErrorInvalidValue);
  *p = std::aligned_alloc(256, std::max<size_t>((bytes + 255) / 256 * 256, 256));
  if (!*p) return ret(cudaErrorMemoryAllocation);
  g_host.insert(*p);
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* p) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!p) return cudaSuccess;
  if (!g_host.erase(p)) return ret(cudaErrorInvalidValue);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_b, size_t* total_b) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!free_b || !total_b) return ret(cudaErrorInvalidValue);
  *free_b = kDeviceMemoryBytes - g_device_used;
  *total_b = kDeviceMemoryBytes;
  return cudaSuccess;
}

// Both ends must lie in the memory the copy kind names: a device range too short for `bytes`,
// or host memory passed as device memory, is an error (it would fault on the GPU).
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  if (!stream_ok(s)) return record(cudaErrorInvalidResourceHandle);
  if (bytes == 0) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (!dst || !src) return ret(cudaErrorInvalidValue);
    const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind == cudaMemcpyDefault) {
      if ((device_span(dst) > 0 && device_span(dst) < bytes) || (device_span(src) > 0 && device_span(src) < bytes))
        return ret(cudaErrorInvalidValue);
    } else if (kind == cudaMemcpyHostToHost) {
      if (device_span(dst) || device_span(src)) return ret(cudaErrorInvalidValue);
    } else {
      if (dst_dev ? !is_device(dst, bytes) : device_span(dst) > 0) return ret(cudaErrorInvalidValue);
      if (src_dev ? !is_device(src, bytes) : device_span(src) > 0) return ret(cudaErrorInvalidValue);
    }
  }
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t bytes, cudaStream_t s) {
  if (!stream_ok(s)) return record(cudaErrorInvalidResourceHandle);
  if (bytes == 0) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (!is_device(p, bytes)) return ret(cudaErrorInvalidValue);
  }
  std::memset(p, v, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int v, size_t bytes) { return cudaMemsetAsync(p, v, bytes, nullptr); }

// ---- streams and events -------------------------------------------------------------------------
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!s) return ret(cudaErrorInvalidValue);
  *s = new CUstream_st{flags};
  g_streams.insert(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_streams.erase(s)) return ret(cudaErrorInvalidResourceHandle);
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  return stream_ok(s) ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaStreamQuery(cudaStream_t s) {
  return stream_ok(s) ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
  if (!stream_ok(s)) return record(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::mutex> lock(g_mu);
  return g_events.count(e) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!e) return ret(cudaErrorInvalidValue);
  *e = new CUevent_st;
  g_events.insert(*e);
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_events.erase(e)) return ret(cudaErrorInvalidResourceHandle);
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (!stream_ok(s)) return record(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_events.count(e)) return ret(cudaErrorInvalidResourceHandle);
  e->recorded = true;
  e->when = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_events.count(e) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_events.count(e) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!ms || !g_events.count(a) || !g_events.count(b)) return ret(cudaErrorInvalidResourceHandle);
  if (!a->recorded || !b->recorded) return ret(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(b->when - a->when).count();
  return cudaSuccess;
}

// ---- kernels ------------------------------------------------------------------------------------
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!func) return ret(cudaErrorInvalidDeviceFunction);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return ret(cudaErrorInvalidValue);
  if (value < 0 || size_t(value) > kSmemPerBlockOptin) return ret(cudaErrorInvalidValue);
  g_max_smem[func] = size_t(value);
  return cudaSuccess;
}
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* a, const void* func) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!a) return ret(cudaErrorInvalidValue);
  if (!func) return ret(cudaErrorInvalidDeviceFunction);
  *a = cudaFuncAttributes{};
  a->maxThreadsPerBlock = 1024;
  auto it = g_max_smem.find(func);
  a->maxDynamicSharedSizeBytes = int(it == g_max_smem.end() ? kSmemPerBlockDefault : it->second);
  a->binaryVersion = 90;
  a->ptxVersion = 90;
  return cudaSuccess;
}

}  // extern "C"
