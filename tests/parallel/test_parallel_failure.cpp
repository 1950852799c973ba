// Failure and hang handling of real jobs.
//  - One non-zero rank fails (LCT_DEBUG_FAIL_RANK / LCT_DEBUG_FAIL_STEP) while the others wait in
//    a collective: `mpirun -np 4 lctrain` ends nonzero within seconds, with that rank's message.
//  - The watchdog (run.hang_timeout) ends a stalled process, saying what it was last doing; it is
//    tested on the Watchdog class in a child process (it ends its process).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "jobs_util.h"
#include "parallel/watchdog.h"

namespace lct {
namespace {

using test::mpirun;
using test::seconds_since;
using test::write_deck;

TEST(Jobs, OneRankFailsWhileTheOthersWaitInACollective) {
  const std::string dir = test::scratch_dir("jobs_fail");
  const std::string deck = write_deck(dir, "cp = 2\n", 5);
  // Rank 2 throws at step 2 after its forward/backward; ranks 0, 1, 3 go on into the loss all-reduce.
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = test::run_command("LCT_DEBUG_FAIL_RANK=2 LCT_DEBUG_FAIL_STEP=2 " + mpirun(4) + test::lctrain() + " " + deck);
  const double dt = seconds_since(t0);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(dt, 30.0) << "the job must end promptly, not hang in a collective\n" << r.output;
  EXPECT_NE(r.output.find("debug failure injected on rank 2 at step 2"), std::string::npos) << r.output;
  // The same job without the injected failure completes.
  const auto ok = test::run_command(mpirun(4) + test::lctrain() + " " + deck);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

// ---- watchdog, in a child process (it ends its process) -------------------------------------

std::string self_exe() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

TEST(Watchdog, EndsAStalledProcessSayingWhatItWasDoing) {
  if (std::getenv("LCT_WATCHDOG_CHILD")) {
    Watchdog dog(1.0);
    dog.beat("test stall: waiting for a peer that never comes", 7);
    std::this_thread::sleep_for(std::chrono::seconds(30));
    FAIL() << "the watchdog did not end the process";
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = test::run_command("LCT_WATCHDOG_CHILD=1 " + self_exe() +
                                   " --gtest_filter=Watchdog.EndsAStalledProcessSayingWhatItWasDoing");
  const double dt = seconds_since(t0);
  EXPECT_EQ(r.exit_code, kExitFailure) << r.output;
  EXPECT_LT(dt, 10.0) << r.output;
  EXPECT_NE(r.output.find("no progress for"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("test stall: waiting for a peer that never comes at step 7"), std::string::npos) << r.output;
}

TEST(Watchdog, LeavesAProcessThatMakesProgressAlone) {
  if (std::getenv("LCT_WATCHDOG_CHILD")) {
    Watchdog dog(0.5);
    for (int i = 0; i < 15; ++i) {
      dog.beat("busy", i);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    Watchdog off(0);  // 0 = disabled: no thread, never fires
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return;
  }
  const auto r = test::run_command("LCT_WATCHDOG_CHILD=1 " + self_exe() +
                                   " --gtest_filter=Watchdog.LeavesAProcessThatMakesProgressAlone");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("no progress"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace lct
