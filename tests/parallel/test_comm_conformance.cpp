// One conformance suite for every Comm implementation (parallel/comm.h), run under mpirun:
//   mpi          MpiComm on host buffers (the cpu backend's communicator)
//   staged-cpu   the staged device communicator (parallel.device_comm = mpi) over the cpu backend
//   staged-cuda  the same over the cuda backend (several ranks may share one GPU)
//   nccl         the NCCL device communicator (one rank per GPU: NCCL refuses two ranks on one)
// Each checks the collectives against values computed by hand, the ring exchange with several
// transfers in flight, the byte counters (identical across implementations: --plan relies on
// them), and that mismatched sizes are errors. Kinds without a usable GPU are skipped with the
// reason; the test passes only if at least the host kinds ran.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/device_comm.h"
#include "ops/ops.h"
#include "ops/staged_comm.h"
#include "parallel/mpi_comm.h"

namespace lct {
namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// A communicator of the given kind over all ranks, with its backend and byte counters.
struct Fixture {
  std::unique_ptr<Ops> ops;
  std::unique_ptr<Traffic> traffic;
  std::unique_ptr<Comm> comm;
  std::string skip;  // non-empty: this kind cannot run here, and why
};

Fixture make_fixture(const std::string& kind) {
  Fixture f;
  const bool device = kind == "staged-cuda" || kind == "nccl";
  std::string why;
  if (device && !cuda_available(&why)) {
    f.skip = "no usable GPU: " + why;
    return f;
  }
  if (kind == "nccl" && !nccl_available()) {
    f.skip = "this build has no NCCL";
    return f;
  }
  const int gpus = cuda_device_count();
  if (kind == "nccl" && gpus < world_size()) {
    // NCCL refuses two ranks on one device; with fewer GPUs than ranks only the staged comm runs.
    f.skip = "NCCL needs one GPU per rank; " + std::to_string(world_size()) + " ranks, " + std::to_string(gpus) +
             " GPU(s) (run with -np 1, or on a node with a GPU per rank)";
    return f;
  }
  f.ops = device ? make_ops("cuda", world_rank()) : make_cpu_ops(DType::F32);
  f.traffic = std::make_unique<Traffic>(nullptr, world_rank());
  std::vector<int> all(static_cast<size_t>(world_size()));
  for (int i = 0; i < world_size(); ++i) all[size_t(i)] = i;
  auto mpi = split_comm(MPI_COMM_WORLD, {all}, f.traffic.get(), false);
  if (kind == "mpi")
    f.comm = std::move(mpi);
  else if (kind == "staged-cpu" || kind == "staged-cuda")
    f.comm = make_staged_comm(std::move(mpi), *f.ops);
  else
    f.comm = make_device_comm(std::move(mpi), *f.ops, "conformance", 60);
  return f;
}

// A backend tensor filled from host values (converted to the tensor's dtype).
class Buf {
 public:
  Buf(Ops& ops, DType t, int64_t n) : ops_(ops), t_(nullptr, t, {n}) { t_.ptr = ops.alloc(t_.bytes()); }
  ~Buf() { ops_.free(t_.ptr); }
  void set(const std::vector<double>& v) {
    std::vector<char> raw(t_.bytes());
    for (size_t i = 0; i < v.size(); ++i) {
      switch (t_.dtype) {
        case DType::F32: reinterpret_cast<float*>(raw.data())[i] = float(v[i]); break;
        case DType::F64: reinterpret_cast<double*>(raw.data())[i] = v[i]; break;
        case DType::I32: reinterpret_cast<int32_t*>(raw.data())[i] = int32_t(v[i]); break;
        case DType::BF16: reinterpret_cast<uint16_t*>(raw.data())[i] = float_to_bf16(float(v[i])); break;
      }
    }
    ops_.from_host(t_, raw.data());
  }
  std::vector<double> get() const {
    std::vector<char> raw(t_.bytes());
    ops_.to_host(raw.data(), t_);
    std::vector<double> v(static_cast<size_t>(t_.numel()));
    for (size_t i = 0; i < v.size(); ++i) {
      switch (t_.dtype) {
        case DType::F32: v[i] = reinterpret_cast<float*>(raw.data())[i]; break;
        case DType::F64: v[i] = reinterpret_cast<double*>(raw.data())[i]; break;
        case DType::I32: v[i] = reinterpret_cast<int32_t*>(raw.data())[i]; break;
        case DType::BF16: v[i] = bf16_to_float(reinterpret_cast<uint16_t*>(raw.data())[i]); break;
      }
    }
    return v;
  }
  Tensor t() const { return t_; }

 private:
  Ops& ops_;
  Tensor t_;
};

// Small integers: exact in every dtype (bf16 holds integers up to 256 exactly).
double value(int rank, int64_t i) { return double((rank * 7 + i * 3) % 23) - 5; }

class CommConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    f_ = make_fixture(GetParam());
    if (!f_.skip.empty()) GTEST_SKIP() << GetParam() << ": " << f_.skip;
  }
  std::vector<DType> reduce_dtypes() const {
    // The host communicator reduces what the cpu backend holds; device communicators also bf16.
    if (GetParam() == "mpi" || GetParam() == "staged-cpu") return {DType::F32, DType::F64, DType::I32};
    return {DType::F32, DType::BF16};
  }
  Fixture f_;
};

TEST_P(CommConformance, Identity) {
  Comm& c = *f_.comm;
  EXPECT_EQ(c.size(), world_size());
  EXPECT_EQ(c.rank(), world_rank());
  for (int r = 0; r < c.size(); ++r) EXPECT_EQ(c.world_rank_of(r), r);
}

TEST_P(CommConformance, AllReduceSumAndMax) {
  Comm& c = *f_.comm;
  const int P = c.size(), me = c.rank();
  const int64_t n = 1000;
  for (DType t : reduce_dtypes()) {
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max}) {
      if (op == ReduceOp::Max && t == DType::BF16) continue;  // not used on bf16
      Buf b(*f_.ops, t, n);
      std::vector<double> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[size_t(i)] = value(me, i);
      b.set(v);
      c.all_reduce(b.t(), op);
      const std::vector<double> got = b.get();
      for (int64_t i = 0; i < n; ++i) {
        double want = op == ReduceOp::Sum ? 0 : -1e300;
        for (int r = 0; r < P; ++r) want = op == ReduceOp::Sum ? want + value(r, i) : std::max(want, value(r, i));
        ASSERT_EQ(got[size_t(i)], want) << dtype_name(t) << (op == ReduceOp::Sum ? " sum" : " max") << " element " << i;
      }
    }
  }
  EXPECT_EQ(c.all_reduce_scalar(double(me + 1)), double(P * (P + 1) / 2));
  EXPECT_EQ(c.all_reduce_scalar(double(me), ReduceOp::Max), double(P - 1));
}

TEST_P(CommConformance, ReduceScatterAndAllGather) {
  Comm& c = *f_.comm;
  const int P = c.size(), me = c.rank();
  const int64_t part = 37;
  for (DType t : reduce_dtypes()) {
    Buf send(*f_.ops, t, part * P), recv(*f_.ops, t, part);
    std::vector<double> v(static_cast<size_t>(part * P));
    for (int64_t i = 0; i < part * P; ++i) v[size_t(i)] = value(me, i);
    send.set(v);
    c.reduce_scatter(send.t(), recv.t());
    const std::vector<double> got = recv.get();
    for (int64_t i = 0; i < part; ++i) {
      double want = 0;
      for (int r = 0; r < P; ++r) want += value(r, me * part + i);
      ASSERT_EQ(got[size_t(i)], want) << dtype_name(t) << " reduce_scatter element " << i;
    }
    Buf mine(*f_.ops, t, part), all(*f_.ops, t, part * P);
    std::vector<double> m(static_cast<size_t>(part));
    for (int64_t i = 0; i < part; ++i) m[size_t(i)] = value(me, i);
    mine.set(m);
    c.all_gather(mine.t(), all.t());
    const std::vector<double> g = all.get();
    for (int r = 0; r < P; ++r)
      for (int64_t i = 0; i < part; ++i)
        ASSERT_EQ(g[size_t(r * part + i)], value(r, i)) << dtype_name(t) << " all_gather part " << r;
  }
}

// The non-blocking all-gather and reduce-scatter (ZeRO-3's prefetch and gradient reduction): two
// of each in flight at once, waited in another order than started, give what the blocking calls
// give, and count the same bytes.
TEST_P(CommConformance, AsyncGatherAndReduceScatterInFlight) {
  Comm& c = *f_.comm;
  const int P = c.size(), me = c.rank();
  const int64_t part = 53;
  for (DType t : reduce_dtypes()) {
    if (t == DType::I32) continue;  // not used by ZeRO
    std::vector<std::unique_ptr<Buf>> sends, recvs, mines, alls;
    std::vector<std::unique_ptr<PendingTransfer>> rs, ag;
    f_.traffic->reset();
    for (int k = 0; k < 2; ++k) {
      sends.push_back(std::make_unique<Buf>(*f_.ops, t, part * P));
      recvs.push_back(std::make_unique<Buf>(*f_.ops, t, part));
      mines.push_back(std::make_unique<Buf>(*f_.ops, t, part));
      alls.push_back(std::make_unique<Buf>(*f_.ops, t, part * P));
      std::vector<double> v(static_cast<size_t>(part * P)), m(static_cast<size_t>(part));
      for (int64_t i = 0; i < part * P; ++i) v[size_t(i)] = value(me + k, i);
      for (int64_t i = 0; i < part; ++i) m[size_t(i)] = value(me, i + k);
      sends[size_t(k)]->set(v);
      mines[size_t(k)]->set(m);
      rs.push_back(c.reduce_scatter_async(sends[size_t(k)]->t(), recvs[size_t(k)]->t()));
      ag.push_back(c.all_gather_async(mines[size_t(k)]->t(), alls[size_t(k)]->t()));
    }
    const int64_t counted = f_.traffic->collective_bytes();
    for (int k = 1; k >= 0; --k) {
      ag[size_t(k)]->wait();
      rs[size_t(k)]->wait();
    }
    for (int k = 0; k < 2; ++k) {
      const std::vector<double> got = recvs[size_t(k)]->get(), g = alls[size_t(k)]->get();
      for (int64_t i = 0; i < part; ++i) {
        double want = 0;
        for (int r = 0; r < P; ++r) want += value(r + k, me * part + i);
        ASSERT_EQ(got[size_t(i)], want) << dtype_name(t) << " reduce_scatter_async " << k << " element " << i;
      }
      for (int r = 0; r < P; ++r)
        for (int64_t i = 0; i < part; ++i)
          ASSERT_EQ(g[size_t(r * part + i)], value(r, i + k)) << dtype_name(t) << " all_gather_async " << k << " part " << r;
    }
    // The same calls, blocking: the same bytes.
    f_.traffic->reset();
    for (int k = 0; k < 2; ++k) {
      c.reduce_scatter(sends[size_t(k)]->t(), recvs[size_t(k)]->t());
      c.all_gather(mines[size_t(k)]->t(), alls[size_t(k)]->t());
    }
    EXPECT_EQ(counted, f_.traffic->collective_bytes()) << dtype_name(t);
    if (P > 1) {
      EXPECT_EQ(counted, 2 * 2 * part * P * int64_t(dtype_size(t)) * (P - 1) / P) << dtype_name(t);
    }
  }
  Buf a(*f_.ops, DType::F32, 10), b(*f_.ops, DType::F32, 11);
  EXPECT_THROW(c.reduce_scatter_async(a.t(), b.t()), Error);
  EXPECT_THROW(c.all_gather_async(b.t(), a.t()), Error);
}

TEST_P(CommConformance, BroadcastFromEveryRoot) {
  Comm& c = *f_.comm;
  for (int root = 0; root < c.size(); ++root) {
    Buf b(*f_.ops, DType::F32, 64);
    std::vector<double> v(64, -1.0);
    if (c.rank() == root)
      for (int64_t i = 0; i < 64; ++i) v[size_t(i)] = value(root, i);
    b.set(v);
    c.broadcast(b.t(), root);
    const std::vector<double> got = b.get();
    for (int64_t i = 0; i < 64; ++i) ASSERT_EQ(got[size_t(i)], value(root, i)) << "root " << root;
  }
  c.barrier();
}

// The ring: each rank sends to the next and receives from the previous, with two transfers in
// flight at once (as ring attention keeps K/V and dK/dV moving), for P hops.
TEST_P(CommConformance, RingExchangeWithTwoInFlight) {
  Comm& c = *f_.comm;
  const int P = c.size(), me = c.rank(), next = (me + 1) % P, prev = (me + P - 1) % P;
  const int64_t n = 4096;
  const DType t = f_.ops->act_dtype() == DType::BF16 ? DType::BF16 : DType::F32;
  Buf a(*f_.ops, t, n), b(*f_.ops, t, n), ra(*f_.ops, t, n), rb(*f_.ops, t, n);
  std::vector<double> va(static_cast<size_t>(n)), vb(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) va[size_t(i)] = value(me, i), vb[size_t(i)] = -value(me, i);
  a.set(va);
  b.set(vb);
  for (int hop = 1; hop <= P; ++hop) {
    auto p1 = c.exchange(a.t(), next, ra.t(), prev, 2 * hop);
    auto p2 = c.exchange(b.t(), next, rb.t(), prev, 2 * hop + 1);
    p2->wait();
    p1->wait();
    const int from = ((me - hop) % P + P) % P;  // whose block arrived after `hop` hops
    const std::vector<double> ga = ra.get(), gb = rb.get();
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(ga[size_t(i)], value(from, i)) << "hop " << hop << " element " << i;
      ASSERT_EQ(gb[size_t(i)], -value(from, i)) << "hop " << hop << " element " << i;
    }
    f_.ops->convert(a.t(), ra.t());
    f_.ops->convert(b.t(), rb.t());
  }
}

// Bytes are counted by link, by the communicator itself, in the DEVICE dtype's size: a ring
// exchange counts its payload to the destination, an all-reduce 2 (P-1)/P of the buffer.
TEST_P(CommConformance, ByteCountersAreTheSameForEveryImplementation) {
  Comm& c = *f_.comm;
  const int P = c.size();
  if (P < 2) GTEST_SKIP() << "one rank sends nothing";
  f_.traffic->reset();
  const int64_t n = 1024;
  Buf s(*f_.ops, DType::F32, n), r(*f_.ops, DType::F32, n);
  c.exchange(s.t(), (c.rank() + 1) % P, r.t(), (c.rank() + P - 1) % P, 7)->wait();
  EXPECT_EQ(f_.traffic->p2p_bytes_to((c.rank() + 1) % P), n * 4);
  EXPECT_EQ(f_.traffic->p2p_messages(), 1);
  f_.traffic->reset();
  const DType t = reduce_dtypes().back();  // bf16 on device communicators: counted as 2 bytes
  Buf g(*f_.ops, t, n);
  c.all_reduce(g.t(), ReduceOp::Sum);
  EXPECT_EQ(f_.traffic->collective_bytes(), 2 * n * int64_t(dtype_size(t)) * (P - 1) / P) << dtype_name(t);
}

// All-to-all (issue 19, the Ulysses head exchange): part j of send goes to rank j, part i of recv
// comes from rank i; every dtype the attention wrapper sends (act and acc). Counted as AllToAll:
// send.bytes() / P to every other rank (in the device dtype's size), nothing to itself, and in the
// link-class totals.
TEST_P(CommConformance, AllToAll) {
  Comm& c = *f_.comm;
  const int P = c.size(), me = c.rank();
  const int64_t part = 37;
  std::vector<DType> types = {DType::F32, DType::I32};
  if (f_.ops->act_dtype() == DType::BF16) types = {DType::BF16, DType::F32};
  for (DType t : types) {
    f_.traffic->reset();
    Buf send(*f_.ops, t, part * P), recv(*f_.ops, t, part * P);
    std::vector<double> v(static_cast<size_t>(part * P));
    for (int j = 0; j < P; ++j)
      for (int64_t i = 0; i < part; ++i) v[size_t(j * part + i)] = value(me * P + j, i);  // (from me, to j)
    send.set(v);
    c.all_to_all(Tensor(send.t().ptr, t, {int64_t(P), part}), Tensor(recv.t().ptr, t, {int64_t(P), part}));
    const std::vector<double> got = recv.get();
    for (int i = 0; i < P; ++i)
      for (int64_t k = 0; k < part; ++k)
        ASSERT_EQ(got[size_t(i * part + k)], value(i * P + me, k)) << dtype_name(t) << " part from rank " << i;
    const int64_t pb = part * int64_t(dtype_size(t));
    EXPECT_EQ(f_.traffic->a2a_bytes(), pb * (P - 1)) << dtype_name(t);
    const std::map<int, int64_t> peers = f_.traffic->a2a_peers();
    EXPECT_EQ(peers.size(), size_t(P - 1)) << dtype_name(t);
    for (int j = 0; j < P; ++j) {
      if (j == me) {
        EXPECT_EQ(peers.count(j), 0u) << "the self part is not counted";
      } else {
        EXPECT_EQ(peers.count(j) ? peers.at(j) : -1, pb) << dtype_name(t) << " to rank " << j;
      }
    }
    EXPECT_EQ(f_.traffic->bytes(LinkClass::IntraNode), pb * (P - 1)) << "a2a bytes are in the link-class totals";
    EXPECT_EQ(f_.traffic->p2p_messages(), 0);
    EXPECT_EQ(f_.traffic->collective_bytes(), 0);
  }
  Buf a(*f_.ops, DType::F32, 4 * P), b(*f_.ops, DType::F32, 4 * P + 1);
  EXPECT_THROW(c.all_to_all(a.t(), b.t()), Error);
  if (P > 1) {
    Buf odd(*f_.ops, DType::F32, 4 * P + 1), odd2(*f_.ops, DType::F32, 4 * P + 1);
    EXPECT_THROW(c.all_to_all(odd.t(), odd2.t()), Error);
  }
}

TEST_P(CommConformance, MismatchedSizesAreErrors) {
  Comm& c = *f_.comm;
  Buf a(*f_.ops, DType::F32, 10), b(*f_.ops, DType::F32, 11);
  EXPECT_THROW(c.exchange(a.t(), 0, b.t(), 0, 3), Error);
  EXPECT_THROW(c.reduce_scatter(a.t(), b.t()), Error);
}

INSTANTIATE_TEST_SUITE_P(Kinds, CommConformance, ::testing::Values("mpi", "staged-cpu", "staged-cuda", "nccl"),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string s = i.param;
                           for (char& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace lct
