// Where a rank's data lives in the full logical tensors. A rank's parameters are its tp slices,
// packed in one flat buffer (model/params.h); a ZeRO shard is a range of that buffer. Checkpoints
// store every tensor at its full shape, so each piece of a flat range maps to contiguous runs of
// the full tensor in row-major order, and those to HDF5 hyperslabs.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/params.h"

namespace lct {

// A run of `count` elements that starts at `local` in the rank's flat buffer and at `full` in the
// row-major full tensor `spec`.
struct TensorRun {
  int spec;  // index into ParamTable::specs
  int64_t local, full, count;
};

// The runs covering flat range [begin, begin + len) of this rank's buffer, in increasing order.
std::vector<TensorRun> runs_of_range(const ParamTable& table, int64_t begin, int64_t len);

// A run of several ranges whose elements lie back to back in a host buffer (a ZeRO shard: one
// range per unit): `host` is the run's first element there.
struct HostRun : TensorRun {
  int64_t host = 0;
};
// The runs of increasing, disjoint ranges, in range order (and so in tensor order).
std::vector<HostRun> runs_of_ranges(const ParamTable& table, const std::vector<FlatRange>& ranges);

// A [rows, cols] row-major region: a contiguous element range [a, b) of the full tensor as at most
// three rectangles (partial first row, whole rows, partial last row).
struct Rect {
  int64_t row, col, rows, cols;
};
std::vector<Rect> rects_of_range(int64_t a, int64_t b, int64_t cols);

}  // namespace lct
