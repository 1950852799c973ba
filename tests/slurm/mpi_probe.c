/* A tiny MPI program for the SLURM harness tests (compiled by the test with mpicc).
 *
 *   mpi_probe info
 *       Every rank prints "rank R size S node_size L nodes N host H slurm_node X"; rank 0 then
 *       prints "SUMMARY size=S nodes=N min_node_size=A max_node_size=B" where nodes are the
 *       groups of MPI_Comm_split_type(MPI_COMM_TYPE_SHARED).
 *   mpi_probe preempt OUTDIR RESTART MAX_WAIT_S
 *       Stands in for a training run that checkpoints on SIGUSR1. Every rank writes
 *       OUTDIR/ready.RESTART.RANK once its handler is installed. RESTART > 0 (a requeued run):
 *       write OUTDIR/done.RESTART.RANK and exit 0. RESTART == 0: wait until every rank has
 *       received SIGUSR1 itself (agreed through an allreduce, as a trainer would at a step
 *       boundary), write OUTDIR/preempted.RESTART.RANK and exit 75 (EX_TEMPFAIL: "requeue me").
 *       Exit 3 when MAX_WAIT_S passes without the signal reaching every rank.
 */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { kExitRequeue = 75, kExitNoSignal = 3, kExitUsage = 2 };

static volatile sig_atomic_t g_usr1_count = 0; /* written only by the signal handler */

static void on_usr1(int sig) {
  (void)sig;
  g_usr1_count++;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Writes OUTDIR/KIND.RESTART.RANK holding one line of text; returns 0 on success. */
static int write_marker(const char *outdir, const char *kind, int restart, int rank, const char *text) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.%d.%d", outdir, kind, restart, rank);
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "mpi_probe: cannot write %s\n", path);
    return 1;
  }
  fprintf(f, "%s\n", text);
  return fclose(f) != 0;
}

static int run_info(int rank, int size) {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int node_rank, node_size;
  MPI_Comm_rank(node, &node_rank);
  MPI_Comm_size(node, &node_size);
  int is_leader = node_rank == 0, nodes = 0, min_ns = 0, max_ns = 0;
  MPI_Allreduce(&is_leader, &nodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(&node_size, &min_ns, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&node_size, &max_ns, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  const char *slurm_node = getenv("SLURMD_NODENAME");
  printf("rank %d size %d node_size %d nodes %d host %s slurm_node %s\n", rank, size, node_size, nodes,
         host, slurm_node ? slurm_node : "-");
  fflush(stdout);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    printf("SUMMARY size=%d nodes=%d min_node_size=%d max_node_size=%d\n", size, nodes, min_ns, max_ns);
    fflush(stdout);
  }
  MPI_Comm_free(&node);
  return 0;
}

static int run_preempt(int rank, const char *outdir, int restart, double max_wait_s) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);

  char text[256];
  snprintf(text, sizeof text, "rank %d restart %d pid %d ready %.3f", rank, restart, (int)getpid(), now_s());
  int bad = write_marker(outdir, "ready", restart, rank, text);
  if (restart > 0) {
    MPI_Barrier(MPI_COMM_WORLD);
    snprintf(text, sizeof text, "rank %d restart %d finished normally", rank, restart);
    bad |= write_marker(outdir, "done", restart, rank, text);
    return bad ? 1 : 0;
  }

  /* Poll like a training loop: one allreduce per "step"; stop only when every rank saw USR1. */
  double t0 = now_s();
  for (;;) {
    int mine = g_usr1_count > 0, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (all) break;
    if (now_s() - t0 > max_wait_s) {
      fprintf(stderr, "mpi_probe: rank %d: no SIGUSR1 on every rank within %.0f s (mine=%d)\n", rank,
              max_wait_s, mine);
      return kExitNoSignal;
    }
    usleep(50 * 1000);
  }
  snprintf(text, sizeof text, "rank %d restart %d got SIGUSR1 x%d after %.3f s", rank, restart,
           (int)g_usr1_count, now_s() - t0);
  bad |= write_marker(outdir, "preempted", restart, rank, text);
  MPI_Barrier(MPI_COMM_WORLD);
  return bad ? 1 : kExitRequeue;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int rc;
  if (argc >= 2 && strcmp(argv[1], "info") == 0) {
    rc = run_info(rank, size);
  } else if (argc == 5 && strcmp(argv[1], "preempt") == 0) {
    rc = run_preempt(rank, argv[2], atoi(argv[3]), atof(argv[4]));
  } else {
    if (rank == 0) fprintf(stderr, "usage: mpi_probe info | mpi_probe preempt OUTDIR RESTART MAX_WAIT_S\n");
    rc = kExitUsage;
  }
  MPI_Finalize();
  return rc;
}
