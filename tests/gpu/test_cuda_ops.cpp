// The cuda backend against the cpu backend (filled in below).
#include <gtest/gtest.h>

#include "ops/ops.h"

TEST(CudaOps, Available) {
  std::string why;
  if (!lct::cuda_available(&why)) GTEST_SKIP() << "no usable GPU: " << why;
}
