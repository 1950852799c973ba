#include "ckpt/tensor_ranges.h"

#include <algorithm>

#include "core/error.h"

namespace lct {

std::vector<TensorRun> runs_of_range(const ParamTable& table, int64_t begin, int64_t len) {
  std::vector<TensorRun> runs;
  const int64_t end = std::min(begin + len, table.total);
  for (size_t i = 0; i < table.specs.size(); ++i) {
    const ParamSpec& p = table.specs[i];
    const int64_t a = std::max(begin, p.offset), b = std::min(end, p.offset + p.local_numel());
    if (a >= b) continue;
    int64_t off = a - p.offset;  // offset inside the local slice
    int64_t stop = b - p.offset;
    if (p.split != Split::Cols) {  // the slice is whole rows of the full tensor: one run
      stop = std::min(stop, p.valid_rows * p.local_cols);  // vocabulary padding is not stored
      if (off >= stop) continue;
      runs.push_back({int(i), a, p.row0 * p.cols + off, stop - off});
      continue;
    }
    while (off < stop) {  // column slices: one run per (partial) row
      const int64_t r = off / p.local_cols, c = off % p.local_cols;
      const int64_t n = std::min(p.local_cols - c, stop - off);
      runs.push_back({int(i), p.offset + off, (p.row0 + r) * p.cols + p.col0 + c, n});
      off += n;
    }
  }
  return runs;
}

std::vector<HostRun> runs_of_ranges(const ParamTable& table, const std::vector<FlatRange>& ranges) {
  std::vector<HostRun> out;
  int64_t host = 0;
  for (const FlatRange& r : ranges) {
    LCT_CHECK(out.empty() || r.begin >= out.back().local + out.back().count, "ranges must increase");
    for (const TensorRun& t : runs_of_range(table, r.begin, r.len)) {
      HostRun h;
      static_cast<TensorRun&>(h) = t;
      h.host = host + (t.local - r.begin);
      out.push_back(h);
    }
    host += r.len;
  }
  return out;
}

std::vector<Rect> rects_of_range(int64_t a, int64_t b, int64_t cols) {
  std::vector<Rect> out;
  if (a >= b) return out;
  const int64_t r0 = a / cols, c0 = a % cols, r1 = (b - 1) / cols, c1 = (b - 1) % cols;
  if (r0 == r1) {
    out.push_back({r0, c0, 1, c1 - c0 + 1});
    return out;
  }
  int64_t first_full = r0;
  if (c0 != 0) {
    out.push_back({r0, c0, 1, cols - c0});
    first_full = r0 + 1;
  }
  int64_t last_full = r1;
  if (c1 != cols - 1) last_full = r1 - 1;
  if (last_full >= first_full) out.push_back({first_full, 0, last_full - first_full + 1, cols});
  if (c1 != cols - 1) out.push_back({r1, 0, 1, c1 + 1});
  return out;
}

}  // namespace lct
