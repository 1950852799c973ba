#include "parallel/agree.h"

#include <climits>
#include <string>

#include "core/error.h"

namespace lct {
namespace {

// Shares (code, message) of the lowest failing rank and throws it everywhere.
void verdict(MPI_Comm comm, int code, const std::string& msg) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  int failing = code != 0 ? rank : INT_MAX;
  MPI_Allreduce(MPI_IN_PLACE, &failing, 1, MPI_INT, MPI_MIN, comm);
  if (failing == INT_MAX) return;
  int info[2] = {code, int(msg.size())};
  MPI_Bcast(info, 2, MPI_INT, failing, comm);
  std::string text(size_t(info[1]), '\0');
  if (rank == failing) text = msg;
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
