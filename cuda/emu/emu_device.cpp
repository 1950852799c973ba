// The emulated device's execution: blocks run one after another, a block's threads are fibers on
// the launching thread (cuda_emu.h has the model and its limits).
//
// Fibers switch with a few instructions (x86-64: save the callee-saved registers and the stack
// pointer; elsewhere ucontext), so the thousands of barrier and shuffle switches of a kernel cost
// microseconds, and the 128 KB stacks (with a guard page: runaway recursion stops with a message,
// not silent corruption) are mapped once and reused by every block.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "cuda/emu/cuda_emu.h"
#include "cuda/emu/emu_state.h"

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

extern "C" void lct_emu_fiber_main();

namespace lct::emu {

void fatal(const char* fmt, ...) {
  std::fflush(stdout);
  std::fprintf(stderr, "cuda_emu: ");
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "\n");
  std::abort();
}

namespace {

constexpr int kMaxThreads = 1024;
constexpr size_t kStackBytes = 128 * 1024, kGuardBytes = 4096;
constexpr size_t kSmemRedzone = 256;  // bytes after the dynamic shared memory checked for writes
constexpr unsigned char kSmemFill = 0xFF, kRedzoneFill = 0xA5;

enum class State : uint8_t { Runnable, AtWarpBarrier, AtBlockBarrier, Exited };

struct PendingCopy {
  unsigned char* dst;
  unsigned char bytes[16];
  uint32_t group;
};

struct Lane {
  void* sp = nullptr;  // saved stack pointer while switched out
#if !defined(__x86_64__)
  ucontext_t ctx;
#endif
  State state = State::Runnable;
  uint32_t collectives = 0;  // warp collectives taken part in: the parity picks the slot buffer
  uint32_t committed = 0;    // cp.async groups committed
  std::vector<PendingCopy> copies;
};

// Warp collectives use two slot buffers alternately: a lane writes buffer p of collective n + 2
// only after the barrier of collective n + 1, which every lane reaches after reading collective n.
struct Warp {
  int live = 0, arrived = 0;
  uint32_t alive = 0;  // lanes that exist in the block and have not exited
  uint64_t slot[2][32];
  uint32_t regs[2][32][6];
  double prod[2][16][8];
  bool prod_ready[2];
};

struct Block {
  const char* kernel = "";
  dim3 grid, idx, dim;
  int n = 0, live = 0, arrived = 0, cur = 0;
  unsigned char* smem = nullptr;
  size_t smem_bytes = 0;
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
  void* sched_sp = nullptr;
#if !defined(__x86_64__)
  ucontext_t sched_ctx;
#endif
};

Block g_block;
std::vector<Lane> g_lanes(kMaxThreads);
Warp g_warps[kMaxThreads / 32];
std::vector<unsigned char> g_smem;
char* g_stacks = nullptr;  // kMaxThreads x (guard page + stack)
std::mutex g_launch_mutex;

char* stack_base(int i) { return g_stacks + size_t(i) * (kGuardBytes + kStackBytes); }

void on_segv(int sig, siginfo_t* info, void*) {
  const char* a = static_cast<const char*>(info->si_addr);
  for (int i = 0; g_stacks && i < kMaxThreads; ++i) {
    if (a >= stack_base(i) && a < stack_base(i) + kGuardBytes) {
      char msg[256];
      const int len = std::snprintf(msg, sizeof msg,
                                    "cuda_emu: thread %d of kernel %s overflowed its %zu KB stack "
                                    "(runaway recursion in a device function?)\n",
                                    i, g_block.kernel, kStackBytes / 1024);
      if (len > 0) (void)!write(2, msg, size_t(len));
      _exit(134);
    }
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void map_stacks() {
  const size_t total = size_t(kMaxThreads) * (kGuardBytes + kStackBytes);
  void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) fatal("cannot map %zu bytes of fiber stacks", total);
  g_stacks = static_cast<char*>(p);
  for (int i = 0; i < kMaxThreads; ++i) mprotect(stack_base(i), kGuardBytes, PROT_NONE);
  // The overflow report runs on its own stack: the faulting one has none left.
  static std::vector<char> alt(64 * 1024);
  stack_t ss{};
  ss.ss_sp = alt.data();
  ss.ss_size = alt.size();
  sigaltstack(&ss, nullptr);
  struct sigaction sa {};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
}

}  // namespace
}  // namespace lct::emu

// ---- fiber switching ---------------------------------------------------------------------------
#if defined(__x86_64__)
// lct_emu_switch(save, next): pushes the callee-saved registers, stores the stack pointer in
// *save, loads `next` and pops the registers saved there. A new fiber's stack holds six zero
// registers and the address of lct_emu_fiber_entry, which calls lct_emu_fiber_main.
extern "C" void lct_emu_switch(void** save, void* next);
extern "C" void lct_emu_fiber_entry();
asm(R"(
  .text
  .p2align 4
  .globl lct_emu_switch
  .hidden lct_emu_switch
  .type lct_emu_switch, @function
lct_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size lct_emu_switch, .-lct_emu_switch
  .p2align 4
  .globl lct_emu_fiber_entry
  .hidden lct_emu_fiber_entry
  .type lct_emu_fiber_entry, @function
lct_emu_fiber_entry:
  call lct_emu_fiber_main
  ud2
  .size lct_emu_fiber_entry, .-lct_emu_fiber_entry
)");

namespace lct::emu {
namespace {
void start_fiber(Lane& l, int i) {
  // The stack top is 16-byte aligned; after `ret` into lct_emu_fiber_entry the stack pointer is
  // too, so its `call` gives lct_emu_fiber_main the ABI's entry alignment.
  auto* top = reinterpret_cast<uint64_t*>(stack_base(i) + kGuardBytes + kStackBytes);
  uint64_t* sp = top - 9;
  for (int r = 0; r < 6; ++r) sp[r] = 0;
  sp[6] = reinterpret_cast<uint64_t>(&lct_emu_fiber_entry);
  l.sp = sp;
}
void enter_fiber(Lane& l) { lct_emu_switch(&g_block.sched_sp, l.sp); }
void leave_fiber(Lane& l) { lct_emu_switch(&l.sp, g_block.sched_sp); }
}  // namespace
}  // namespace lct::emu
#else
namespace lct::emu {
namespace {
void start_fiber(Lane& l, int i) {
  getcontext(&l.ctx);
  l.ctx.uc_stack.ss_sp = stack_base(i) + kGuardBytes;
  l.ctx.uc_stack.ss_size = kStackBytes;
  l.ctx.uc_link = nullptr;
  makecontext(&l.ctx, lct_emu_fiber_main, 0);
}
void enter_fiber(Lane& l) { swapcontext(&g_block.sched_ctx, &l.ctx); }
void leave_fiber(Lane& l) { swapcontext(&l.ctx, &g_block.sched_ctx); }
}  // namespace
}  // namespace lct::emu
#endif

namespace lct::emu {
namespace {

Lane& me() { return g_lanes[size_t(g_block.cur)]; }
Warp& my_warp() { return g_warps[g_block.cur / 32]; }

void check_running(const char* what) {
  if (!g_block.body) fatal("%s called outside a kernel", what);
}

void release(State waiting, int first, int last) {
  for (int i = first; i < last; ++i)
    if (g_lanes[size_t(i)].state == waiting) g_lanes[size_t(i)].state = State::Runnable;
}

// Arrival at the current warp's barrier; the last live lane releases the others.
void arrive_warp() {
  Warp& w = my_warp();
  if (++w.arrived == w.live) {
    w.arrived = 0;
    const int w0 = (g_block.cur / 32) * 32;
    release(State::AtWarpBarrier, w0, std::min(w0 + 32, g_block.n));
    return;
  }
  me().state = State::AtWarpBarrier;
  leave_fiber(me());
}

// A warp collective names its lanes in `mask`: every one of them must be alive and take part
// (the emulated kernels always use the full warp).
void check_mask(unsigned mask, const char* what) {
  const Warp& w = my_warp();
  if (mask != w.alive)
    fatal("%s in kernel %s, block (%u,%u,%u), thread %d: mask 0x%08x but the warp's live lanes are 0x%08x "
          "(a lane named in the mask has exited or does not exist, or a live lane is left out)",
          what, g_block.kernel, g_block.idx.x, g_block.idx.y, g_block.idx.z, g_block.cur, mask, w.alive);
}

void thread_exited() {
  Lane& l = me();
  l.state = State::Exited;
  l.copies.clear();
  Warp& w = my_warp();
  w.alive &= ~(1u << (g_block.cur & 31));
  --w.live;
  --g_block.live;
  // Barriers the others wait at may now be complete without this thread.
  if (w.arrived > 0 && w.arrived == w.live) {
    w.arrived = 0;
    const int w0 = (g_block.cur / 32) * 32;
    release(State::AtWarpBarrier, w0, std::min(w0 + 32, g_block.n));
  }
  if (g_block.arrived > 0 && g_block.arrived == g_block.live) {
    g_block.arrived = 0;
    release(State::AtBlockBarrier, 0, g_block.n);
  }
}

void check_redzone() {
  for (size_t i = 0; i < kSmemRedzone; ++i)
    if (g_smem[g_block.smem_bytes + i] != kRedzoneFill)
      fatal("kernel %s, block (%u,%u,%u) wrote %zu bytes past its %zu bytes of dynamic shared memory", g_block.kernel,
            g_block.idx.x, g_block.idx.y, g_block.idx.z, i + 1, g_block.smem_bytes);
}

void run_block() {
  Block& b = g_block;
  std::memset(g_smem.data(), kSmemFill, b.smem_bytes);
  std::memset(g_smem.data() + b.smem_bytes, kRedzoneFill, kSmemRedzone);
  for (int i = 0; i < b.n; ++i) {
    Lane& l = g_lanes[size_t(i)];
    l.state = State::Runnable;
    l.collectives = 0;
    l.committed = 0;
    l.copies.clear();
    start_fiber(l, i);
  }
  for (int w = 0; w < (b.n + 31) / 32; ++w) {
    Warp& wp = g_warps[w];
    wp.live = std::min(32, b.n - w * 32);
    wp.alive = wp.live == 32 ? 0xffffffffu : (1u << wp.live) - 1u;
    wp.arrived = 0;
  }
  b.live = b.n;
  b.arrived = 0;
  while (b.live > 0) {
    bool ran = false;
    for (int i = 0; i < b.n; ++i) {
      if (g_lanes[size_t(i)].state != State::Runnable) continue;
      b.cur = i;
      ran = true;
      enter_fiber(g_lanes[size_t(i)]);
    }
    if (!ran) {
      int at_block = 0, at_warp = 0;
      for (int i = 0; i < b.n; ++i) {
        at_block += g_lanes[size_t(i)].state == State::AtBlockBarrier;
        at_warp += g_lanes[size_t(i)].state == State::AtWarpBarrier;
      }
      fatal("deadlock in kernel %s, block (%u,%u,%u): %d threads wait at __syncthreads, %d at a warp barrier "
            "(__syncwarp, shuffle or mma.sync), %d have exited: a barrier some threads never reach",
            b.kernel, b.idx.x, b.idx.y, b.idx.z, at_block, at_warp, b.n - b.live);
    }
  }
  check_redzone();
}

// Unpacks the low / high bf16 of a register.
float bf_lo(uint32_t r) { return __bfloat162float(__ushort_as_bfloat16(uint16_t(r & 0xffffu))); }
float bf_hi(uint32_t r) { return __bfloat162float(__ushort_as_bfloat16(uint16_t(r >> 16))); }

}  // namespace

dim3 thread_idx() { return dim3(unsigned(g_block.cur), 0, 0); }
dim3 block_idx() { return g_block.idx; }
dim3 block_dim() { return g_block.dim; }
dim3 grid_dim() { return g_block.grid; }
unsigned char* dynamic_smem() {
  check_running("dynamic shared memory");
  return g_smem.data();
}

void block_barrier() {
  check_running("__syncthreads");
  if (++g_block.arrived == g_block.live) {
    g_block.arrived = 0;
    release(State::AtBlockBarrier, 0, g_block.n);
    return;
  }
  me().state = State::AtBlockBarrier;
  leave_fiber(me());
}

void warp_barrier(unsigned mask, const char* what) {
  check_running(what);
  check_mask(mask, what);
  arrive_warp();
}

uint64_t warp_exchange(unsigned mask, uint64_t bits, int src, const char* what) {
  check_running(what);
  check_mask(mask, what);
  if (!(mask >> src & 1u)) fatal("%s in kernel %s reads lane %d, which is not in its mask", what, g_block.kernel, src);
  Warp& w = my_warp();
  const int lane = g_block.cur & 31, p = int(me().collectives++ & 1u);
  w.slot[p][lane] = bits;
  arrive_warp();
  return w.slot[p][src];
}

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 with the PTX ISA's fragments (g = lane / 4,
// t = lane % 4): a0 = A(g, 2t..2t+1), a1 = A(g+8, 2t..), a2 = A(g, 2t+8..), a3 = A(g+8, 2t+8..);
// b0 = B(2t..2t+1, g), b1 = B(2t+8..2t+9, g); c0,c1 = C(g, 2t..2t+1), c2,c3 = C(g+8, 2t..2t+1).
// The first lane past the barrier forms the 16x8 product (exact bf16 products summed in double);
// each lane adds its own accumulators.
void mma_m16n8k16_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  check_running("mma.sync");
  check_mask(0xffffffffu, "mma.sync");
  Warp& w = my_warp();
  const int lane = g_block.cur & 31, p = int(me().collectives++ & 1u);
  uint32_t* mine = w.regs[p][lane];
  for (int i = 0; i < 4; ++i) mine[i] = a[i];
  mine[4] = b0;
  mine[5] = b1;
  w.prod_ready[p] = false;
  arrive_warp();
  if (!w.prod_ready[p]) {
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; ++l) {
      const uint32_t* r = w.regs[p][l];
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
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 8; ++j) {
        double s = 0;
        for (int k = 0; k < 16; ++k) s += double(A[i][k]) * double(B[k][j]);
        w.prod[p][i][j] = s;
      }
    w.prod_ready[p] = true;
  }
  const int g = lane >> 2, t = lane & 3;
  for (int i = 0; i < 4; ++i) c[i] = float(double(c[i]) + w.prod[p][g + (i >= 2 ? 8 : 0)][2 * t + (i & 1)]);
}

void cp_async_16(void* smem, const void* gmem, bool pred) {
  check_running("cp.async");
  auto* dst = static_cast<unsigned char*>(smem);
  if (dst < g_smem.data() || dst + 16 > g_smem.data() + g_block.smem_bytes)
    fatal("cp.async in kernel %s writes outside the block's %zu bytes of dynamic shared memory", g_block.kernel,
          g_block.smem_bytes);
  if ((reinterpret_cast<uintptr_t>(smem) | reinterpret_cast<uintptr_t>(gmem)) & 15u)
    fatal("cp.async of 16 bytes in kernel %s with an address not 16-byte aligned", g_block.kernel);
  PendingCopy c;
  c.dst = dst;
  c.group = me().committed;
  if (pred)
    std::memcpy(c.bytes, gmem, 16);
  else
    std::memset(c.bytes, 0, 16);
  me().copies.push_back(c);
}

void cp_async_commit_group() {
  check_running("cp.async.commit_group");
  ++me().committed;
}

// Retires every copy of the committed groups except the newest `newest_pending` ones; copies not
// committed yet stay in flight (as cp.async.wait_group does).
void cp_async_wait_group(int newest_pending) {
  check_running("cp.async.wait_group");
  Lane& l = me();
  const int64_t limit = int64_t(l.committed) - newest_pending;
  size_t keep = 0;
  for (size_t i = 0; i < l.copies.size(); ++i) {
    const PendingCopy& c = l.copies[i];
    if (int64_t(c.group) < limit)
      std::memcpy(c.dst, c.bytes, 16);
    else
      l.copies[keep++] = c;
  }
  l.copies.resize(keep);
}

bool launch_ok(const char* name, const void* kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t stream) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
    record(cudaErrorInvalidConfiguration);
    return false;
  }
  if (block.y != 1 || block.z != 1) fatal("kernel %s: the emulator runs one-dimensional blocks only", name);
  if (smem > max_dynamic_smem(kernel)) {
    record(cudaErrorInvalidValue);  // more dynamic shared memory than the kernel was allowed
    return false;
  }
  if (!stream_ok(stream)) {
    record(cudaErrorInvalidResourceHandle);
    return false;
  }
  return true;
}

void run_grid(const char* name, dim3 grid, dim3 block, size_t smem, void (*body)(void*), void* ctx) {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  if (!g_stacks) map_stacks();
  if (g_smem.size() < smem + kSmemRedzone) g_smem.resize(smem + kSmemRedzone);
  Block& b = g_block;
  b.kernel = name;
  b.grid = grid;
  b.dim = block;
  b.n = int(block.x);
  b.smem_bytes = smem;
  b.body = body;
  b.ctx = ctx;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        b.idx = dim3(x, y, z);
        run_block();
      }
  b.body = nullptr;
}

}  // namespace lct::emu

// Every fiber starts here: the thread's share of the kernel, then never resumed.
extern "C" __attribute__((visibility("hidden"))) void lct_emu_fiber_main() {
  using namespace lct::emu;
  g_block.body(g_block.ctx);
  thread_exited();
  leave_fiber(me());
  fatal("an exited thread was resumed");
}
