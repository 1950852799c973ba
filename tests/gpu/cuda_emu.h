// A CPU emulation of the CUDA built-ins the attention kernels use (cuda/attention.cu compiled
// with LCT_CUDA_EMULATE), so their fragment indexing, masking, online softmax and tile skipping
// are checked on a machine without a GPU.
//
// A block runs as blockDim.x fibers (ucontext) on one OS thread; __syncthreads and __syncwarp are
// barriers among the fibers that have not exited; warp collectives (shuffle, mma.sync) deposit
// their operands in per-warp slots between two warp barriers. mma.sync.m16n8k16 rebuilds A
// (16x16) and B (16x8) from the 32 lanes' registers with the PTX ISA's fragment layout and
// accumulates in fp32. cp.async copies at once. Shared memory starts as 0xFF bytes (bf16 NaN),
// so a read of shared memory the kernel never wrote shows up as NaN in the results.
//
// What it cannot show: races between warps that the hardware could expose, performance, and
// anything about the real compiler's code. The GPU tests cover those on a GPU.
#pragma once

#define LCT_CUDA_EMULATE 1

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

// The CUDA headers define these for host compilers already; the emulator wants them plain.
#undef __global__
#undef __device__
#undef __forceinline__
#undef __align__
#undef __launch_bounds__
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define LCT_DYNAMIC_SMEM(name) unsigned char* name = ::lct::emu::block().smem.data()
#define threadIdx (::lct::emu::thread_index())
#define blockIdx (::lct::emu::block().block_idx)
#define gridDim (::lct::emu::block().grid)
#define blockDim (::lct::emu::block().block_dim)

namespace lct::emu {

struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  bool done = false;
  int waiting = 0;  // 0 runnable, 1 at a warp barrier, 2 at a block barrier
};

struct Block {
  dim3 grid, block_idx, block_dim;
  std::vector<Fiber> fibers;
  ucontext_t sched;
  int cur = 0;
  std::vector<unsigned char> smem;
  int block_arrived = 0;
  std::vector<int> warp_arrived;
  std::vector<double> slot;         // [warp][lane] shuffle values
  std::vector<uint32_t> mma_regs;   // [warp][lane][6] A and B registers
  std::function<void()> body;
};

// The block being run (the emulator is single-threaded).
inline Block*& current() {
  static Block* b = nullptr;
  return b;
}
inline Block& block() { return *current(); }
inline dim3 thread_index() { return dim3(unsigned(block().cur), 0, 0); }

inline int live_threads() {
  int n = 0;
  for (auto& f : block().fibers) n += !f.done;
  return n;
}
inline int live_in_warp(int w) {
  int n = 0;
  auto& fs = block().fibers;
  for (int i = w * 32; i < std::min<int>(int(fs.size()), w * 32 + 32); ++i) n += !fs[size_t(i)].done;
  return n;
}

inline void barrier(int kind) {
  Block& b = block();
  Fiber& f = b.fibers[size_t(b.cur)];
  const int w = b.cur / 32;
  int& arrived = kind == 2 ? b.block_arrived : b.warp_arrived[size_t(w)];
  ++arrived;
  const int need = kind == 2 ? live_threads() : live_in_warp(w);
  if (arrived == need) {
    arrived = 0;
    for (size_t i = 0; i < b.fibers.size(); ++i)
      if (b.fibers[i].waiting == kind && (kind == 2 || int(i) / 32 == w)) b.fibers[i].waiting = 0;
    return;
  }
  f.waiting = kind;
  swapcontext(&f.ctx, &b.sched);
}

inline void fiber_entry() {
  Block& b = block();
  b.body();
  b.fibers[size_t(b.cur)].done = true;
  // A warp or block barrier others wait at may now be complete without us.
  const int w = b.cur / 32;
  if (b.block_arrived > 0 && b.block_arrived == live_threads()) {
    b.block_arrived = 0;
    for (auto& f : b.fibers)
      if (f.waiting == 2) f.waiting = 0;
  }
  if (b.warp_arrived[size_t(w)] > 0 && b.warp_arrived[size_t(w)] == live_in_warp(w)) {
    b.warp_arrived[size_t(w)] = 0;
    for (int i = w * 32; i < std::min<int>(int(b.fibers.size()), w * 32 + 32); ++i)
      if (b.fibers[size_t(i)].waiting == 1) b.fibers[size_t(i)].waiting = 0;
  }
}

inline void run_block(Block& b) {
  current() = &b;
  const size_t n = b.block_dim.x;
  b.fibers.assign(n, Fiber());
  b.warp_arrived.assign((n + 31) / 32, 0);
  b.slot.assign(((n + 31) / 32) * 32, 0.0);
  b.mma_regs.assign(((n + 31) / 32) * 32 * 6, 0u);
  for (size_t i = 0; i < n; ++i) {
    Fiber& f = b.fibers[i];
    f.stack.resize(256 * 1024);
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.data();
    f.ctx.uc_stack.ss_size = f.stack.size();
    f.ctx.uc_link = &b.sched;
    makecontext(&f.ctx, fiber_entry, 0);
  }
  for (;;) {
    bool ran = false, all_done = true;
    for (size_t i = 0; i < n; ++i) {
      Fiber& f = b.fibers[i];
      if (f.done) continue;
      all_done = false;
      if (f.waiting) continue;
      b.cur = int(i);
      ran = true;
      swapcontext(&b.sched, &f.ctx);
    }
    if (all_done) break;
    if (!ran) {
      std::fprintf(stderr, "cuda_emu: deadlock (threads wait at barriers that cannot complete)\n");
      std::abort();
    }
  }
  current() = nullptr;
}

// kernel<<<grid, block, smem>>>(args...), blocks one after another.
template <class... P, class... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 blk, size_t smem, A... args) {
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        Block b;
        b.grid = grid;
        b.block_idx = dim3(x, y, z);
        b.block_dim = blk;
        b.smem.assign(std::max<size_t>(smem, 16), 0xFF);
        b.body = [&]() { kernel(args...); };
        run_block(b);
      }
}

}  // namespace lct::emu

inline void __syncthreads() { lct::emu::barrier(2); }
inline void __syncwarp() { lct::emu::barrier(1); }

namespace lct::emu {

inline float shfl_xor(float v, int o) {
  Block& b = block();
  const int w = b.cur / 32, lane = b.cur % 32;
  b.slot[size_t(w * 32 + lane)] = v;
  __syncwarp();
  const float r = float(b.slot[size_t(w * 32 + (lane ^ o))]);
  __syncwarp();
  return r;
}

inline void atomic_add(float* p, float v) { *p += v; }

inline float bf_lo(uint32_t r) { return __bfloat162float(__ushort_as_bfloat16(uint16_t(r & 0xffffu))); }
inline float bf_hi(uint32_t r) { return __bfloat162float(__ushort_as_bfloat16(uint16_t(r >> 16))); }

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, fragments as in the PTX ISA.
inline void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  Block& b = block();
  const int w = b.cur / 32, lane = b.cur % 32;
  uint32_t* mine = &b.mma_regs[size_t((w * 32 + lane) * 6)];
  for (int i = 0; i < 4; ++i) mine[i] = a[i];
  mine[4] = b0;
  mine[5] = b1;
  __syncwarp();
  float A[16][16], B[16][8];
  for (int l = 0; l < 32; ++l) {
    const uint32_t* r = &b.mma_regs[size_t((w * 32 + l) * 6)];
    const int g = l >> 2, t = l & 3;
    A[g][2 * t] = bf_lo(r[0]);
    A[g][2 * t + 1] = bf_hi(r[0]);
    A[g + 8][2 * t] = bf_lo(r[1]);
    A[g + 8][2 * t + 1] = bf_hi(r[1]);
    A[g][2 * t + 8] = bf_lo(r[2]);
    A[g][2 * t + 9] = bf_hi(r[2]);
    A[g + 8][2 * t + 8] = bf_lo(r[3]);
    A[g + 8][2 * t + 9] = bf_hi(r[3]);
    B[2 * t][g] = bf_lo(r[4]);
    B[2 * t + 1][g] = bf_hi(r[4]);
    B[2 * t + 8][g] = bf_lo(r[5]);
    B[2 * t + 9][g] = bf_hi(r[5]);
  }
  __syncwarp();  // every lane has read the registers before any lane overwrites its slot
  const int g = lane >> 2, t = lane & 3;
  for (int i = 0; i < 4; ++i) {
    const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
    float acc = c[i];
    for (int k = 0; k < 16; ++k) acc += A[row][k] * B[k][col];
    c[i] = acc;
  }
}

inline void cp_async16(void* smem, const void* gmem, bool pred) {
  if (pred)
    std::memcpy(smem, gmem, 16);
  else
    std::memset(smem, 0, 16);
}
inline void cp_async_commit() {}
template <int N> inline void cp_async_wait() {}

}  // namespace lct::emu
