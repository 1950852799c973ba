// A CPU emulation of the CUDA device built-ins the kernels use, so that cuda/*.cu compile with a
// host C++ compiler from the same source lines nvcc compiles (cuda/device_api.cuh includes this
// header under LCT_CUDA_EMULATE). With emu_runtime.cpp and emu_cublaslt.cpp it forms an emulated
// GPU on which the whole cuda backend runs (test_cuda_ops_emulated).
//
// Execution model (emu_device.cpp): a launch runs its blocks one after another on the calling
// thread; a block's threads are fibers. __syncthreads and __syncwarp are barriers among the
// threads that have not exited; warp collectives (shuffles, mma.sync) exchange their operands
// through per-warp slots at a warp barrier and check that every lane their mask names takes
// part. mma.sync.m16n8k16 rebuilds A (16x16) and B (16x8) from the 32 lanes' registers with the
// PTX ISA fragment layouts. cp.async captures its 16 source bytes at issue and writes shared
// memory only when cp.async.wait_group retires its group, so a read before the wait sees stale
// data. Dynamic shared memory is filled with 0xFF bytes (bf16/f32 NaN) before every block.
//
// What it cannot show: races between threads (they never overlap), timing, static __shared__
// arrays read before they are written (they are plain statics: they keep the previous block's
// values), register or shared-memory limits, and anything about nvcc's code (the PTX guard,
// tests/gpu/ptx_guard.cpp, checks that side).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// The CUDA headers define the execution-space qualifiers for host compilers already (empty);
// __shared__ must become static storage shared by the fibers of the running block.
#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

namespace lct::emu {

// ---- the running thread (emu_device.cpp) -------------------------------------------------------
dim3 thread_idx();
dim3 block_idx();
dim3 block_dim();
dim3 grid_dim();
unsigned char* dynamic_smem();

void block_barrier();
void warp_barrier(unsigned mask, const char* what);
// Deposits `bits` in this lane's slot and returns lane `src`'s deposit (all lanes in `mask` take
// part; a lane outside the warp segment reads its own value, as the hardware does).
uint64_t warp_exchange(unsigned mask, uint64_t bits, int src, const char* what);
void mma_m16n8k16_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1);
void cp_async_16(void* smem, const void* gmem, bool pred);
void cp_async_commit_group();
void cp_async_wait_group(int newest_pending);

// ---- launch ---------------------------------------------------------------------------------------
// Checks the configuration against the emulated device (records the error cudaGetLastError
// returns, as a failed <<<>>> does); true when the grid may run.
bool launch_ok(const char* name, const void* kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t stream);
// Runs `body` once per thread of every block.
void run_grid(const char* name, dim3 grid, dim3 block, size_t smem, void (*body)(void*), void* ctx);

template <class... P, class... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
            A&&... args) {
  if (!launch_ok(name, reinterpret_cast<const void*>(kernel), grid, block, smem, stream)) return;
  // The arguments convert to the parameter types once, as <<<>>> copies them to the device; every
  // thread then gets its own copy.
  struct Ctx {
    void (*kernel)(P...);
    std::tuple<std::decay_t<P>...> params;
  } ctx{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
  run_grid(name, grid, block, smem, [](void* p) {
    Ctx& c = *static_cast<Ctx*>(p);
    std::apply(c.kernel, c.params);
  }, &ctx);
}

template <class T> uint64_t to_bits(T v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move 4- or 8-byte values");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T> T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}
inline int lane_id() { return int(thread_idx().x & 31u); }

}  // namespace lct::emu

#define threadIdx (::lct::emu::thread_idx())
#define blockIdx (::lct::emu::block_idx())
#define blockDim (::lct::emu::block_dim())
#define gridDim (::lct::emu::grid_dim())
constexpr int warpSize = 32;

// ---- synchronisation and warp collectives ------------------------------------------------------
inline void __syncthreads() { lct::emu::block_barrier(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { lct::emu::warp_barrier(mask, "__syncwarp"); }

template <class T> T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize) {
  const int lane = lct::emu::lane_id(), src = lane ^ lane_mask;
  const bool in_segment = (src & ~(width - 1)) == (lane & ~(width - 1));
  return lct::emu::from_bits<T>(
      lct::emu::warp_exchange(mask, lct::emu::to_bits(v), in_segment ? src : lane, "__shfl_xor_sync"));
}
template <class T> T __shfl_sync(unsigned mask, T v, int src_lane, int width = warpSize) {
  const int lane = lct::emu::lane_id();
  const int src = (lane & ~(width - 1)) + (src_lane & (width - 1));
  return lct::emu::from_bits<T>(lct::emu::warp_exchange(mask, lct::emu::to_bits(v), src, "__shfl_sync"));
}
template <class T> T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
  const int lane = lct::emu::lane_id(), src = lane + int(delta);
  const bool in_segment = (src & ~(width - 1)) == (lane & ~(width - 1));
  return lct::emu::from_bits<T>(
      lct::emu::warp_exchange(mask, lct::emu::to_bits(v), in_segment ? src : lane, "__shfl_down_sync"));
}

// ---- atomics (threads never overlap: a read-modify-write is atomic) ----------------------------
inline float atomicAdd(float* p, float v) {
  const float old = *p;
  *p = old + v;
  return old;
}
inline double atomicAdd(double* p, double v) {
  const double old = *p;
  *p = old + v;
  return old;
}
inline int atomicAdd(int* p, int v) {
  const int old = *p;
  *p = old + v;
  return old;
}
inline unsigned atomicAdd(unsigned* p, unsigned v) {
  const unsigned old = *p;
  *p = old + v;
  return old;
}

// ---- bit casts --------------------------------------------------------------------------------
inline unsigned __float_as_uint(float f) { return lct::emu::from_bits<unsigned>(lct::emu::to_bits(f)); }
inline float __uint_as_float(unsigned u) { return lct::emu::from_bits<float>(lct::emu::to_bits(u)); }
inline int __float_as_int(float f) { return lct::emu::from_bits<int>(lct::emu::to_bits(f)); }
inline float __int_as_float(int i) { return lct::emu::from_bits<float>(lct::emu::to_bits(i)); }

// ---- tensor-core and async-copy wrappers (the names cuda/device_api.cuh gives the PTX) ---------
namespace lct::cuda {
inline void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  ::lct::emu::mma_m16n8k16_bf16(c, a, b0, b1);
}
inline void cp_async16(void* smem, const void* gmem, bool pred) { ::lct::emu::cp_async_16(smem, gmem, pred); }
inline void cp_async_commit() { ::lct::emu::cp_async_commit_group(); }
template <int N> inline void cp_async_wait() { ::lct::emu::cp_async_wait_group(N); }
}  // namespace lct::cuda

// ---- kernel attributes: the C++ overloads cuda_runtime.h declares for nvcc only ---------------
template <class T> cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, T* entry) {
  return ::cudaFuncGetAttributes(attr, reinterpret_cast<const void*>(entry));
}
template <class T> cudaError_t cudaFuncSetAttribute(T* entry, cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(entry), attr, value);
}

// ---- launch and shared memory -----------------------------------------------------------------
#define LCT_KERNEL_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::lct::emu::launch(#kernel, kernel, dim3(grid), dim3(block), size_t(smem), stream, __VA_ARGS__)
#define LCT_DYNAMIC_SMEM(type, name) type* name = reinterpret_cast<type*>(::lct::emu::dynamic_smem())
