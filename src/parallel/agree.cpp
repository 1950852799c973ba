#include "parallel/agree.h"

#include <climits>
#include <string>

#include "core/error.h"

namespace lct {
namespace {

constexpr const char* kFoundOn = " (found on rank ";

// World rank 0 prints a collective error under its own label ("[rank 0]"): the message says which
// rank found it when that was another one (once, however many agree() calls it passes through).
std::string with_origin(const std::string& msg) {
  int world_rank = 0, world_size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  if (world_rank == 0 || world_size == 1 || msg.find(kFoundOn) != std::string::npos) return msg;
  return msg + kFoundOn + std::to_string(world_rank) + ")";
}

// Shares (code, message) of the lowest failing rank and throws it everywhere.
void verdict(MPI_Comm comm, int code, const std::string& msg) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  int failing = code != 0 ? rank : INT_MAX;
  MPI_Allreduce(MPI_IN_PLACE, &failing, 1, MPI_INT, MPI_MIN, comm);
  if (failing == INT_MAX) return;
  std::string text = rank == failing ? with_origin(msg) : std::string();
  int info[2] = {code, int(text.size())};
  MPI_Bcast(info, 2, MPI_INT, failing, comm);
  text.resize(size_t(info[1]));
  MPI_Bcast(text.data(), info[1], MPI_CHAR, failing, comm);
  throw Error(info[0], text, /*collective=*/true);
}

}  // namespace

void agree(MPI_Comm comm, const std::function<void()>& fn) {
  int code = 0;
  std::string msg;
  try {
    fn();
  } catch (const Error& e) {
    code = e.code();
    msg = e.what();
  } catch (const std::exception& e) {
    code = kExitFailure;
    msg = e.what();
  }
  verdict(comm, code, msg);
}

void decide_on_root(MPI_Comm comm, int root, const std::function<void()>& fn) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  agree(comm, [&] {
    if (rank == root) fn();
  });
}

}  // namespace lct
