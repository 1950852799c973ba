#include "ops/rank_backend.h"

#include "core/error.h"
#include "ops/device_comm.h"
#include "ops/staged_comm.h"
#include "parallel/agree.h"
#include "parallel/mpi_comm.h"

namespace lct {

std::unique_ptr<Ops> make_rank_backend(const Config& c, ParallelContext& ctx) {
  std::unique_ptr<Ops> ops;
  agree(ctx.world_mpi, [&] {
    ops = make_ops(c.run.device, ctx.me().local_rank, c.run.attention_tile, c.model.attention_impl);
  });
  if (c.run.device == "cpu") return ops;  // host buffers: MPI as it is
  agree(ctx.world_mpi, [&] {
    if (c.parallel.device_comm == "nccl" && !nccl_available())
      throw InputError("parallel.device_comm = nccl, but this lctrain was built without NCCL; set "
                       "parallel.device_comm = mpi (stages device buffers through host memory) or rebuild with NCCL");
  });
  auto wrap = [&](std::unique_ptr<Comm>& comm, const char* name) {
    std::unique_ptr<MpiComm> mpi(dynamic_cast<MpiComm*>(comm.release()));
    LCT_CHECK(mpi, "expected an MPI communicator");
    if (c.parallel.device_comm == "mpi")
      comm = make_staged_comm(std::move(mpi), *ops);
    else
      comm = make_device_comm(std::move(mpi), *ops, name, c.run.hang_timeout);
  };
  // NCCL communicator creation is collective and can fail on one rank (e.g. two ranks on one GPU).
  agree(ctx.world_mpi, [&] {
    wrap(ctx.tp, "tp");
    wrap(ctx.cp, "cp");
    if (ctx.layout.cp_a2a > 1) {  // with U = 1 attention uses cp; a2a and ring stay host MPI (unused)
      wrap(ctx.a2a, "cp_a2a");
      wrap(ctx.ring, "cp_ring");
    }
    wrap(ctx.dp, "dp");
    wrap(ctx.dpcp, "dpcp");
  });
  return ops;
}

}  // namespace lct
