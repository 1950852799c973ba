#include "optim/shard_layout.h"

#include "core/error.h"

namespace lct {

ShardLayout::ShardLayout(const ParamTable& table, int parts, int rank) : parts_(parts), rank_(rank) {
  LCT_CHECK(parts >= 1 && rank >= 0 && rank < parts, "shard ", rank, " of ", parts);
  for (size_t u = 0; u < table.units.size(); ++u) {
    const ParamUnit& U = table.units[u];
    LCT_CHECK(U.size % parts == 0, "unit ", u, " of ", U.size, " elements is not padded to a multiple of ", parts);
    const int64_t len = U.size / parts;
    pieces_.push_back({int(u), U.begin + rank * len, len, size_});
    size_ += len;
  }
}

std::vector<FlatRange> ShardLayout::ranges() const {
  std::vector<FlatRange> out;
  for (const ShardPiece& p : pieces_) out.push_back({p.flat_begin, p.len});
  return out;
}

}  // namespace lct
