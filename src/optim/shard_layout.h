// The per-unit shard layout shared by ZeRO 1, 2 and 3. Every unit of the flat parameter space
// (ParamTable::units: the embedding, each layer, the final norm + LM head) is padded to a
// multiple of the dp x cp size P, and rank r owns part r of each: [begin + r size/P, + size/P).
// A unit is then gathered, or its gradients reduce-scattered, with ONE collective whose parts are
// the ranks' pieces, and a ZeRO-3 rank can rebuild any layer alone. The shard buffer holds the
// rank's pieces back to back in unit order. With P = 1 the shard is the whole flat space, at the
// same offsets.
#pragma once

#include <cstdint>
#include <vector>

#include "model/params.h"

namespace lct {

struct ShardPiece {
  int unit = 0;
  int64_t flat_begin = 0, len = 0;  // in the flat parameter space
  int64_t shard_offset = 0;         // in the shard buffer
};

class ShardLayout {
 public:
  ShardLayout(const ParamTable& table, int parts, int rank);
  int parts() const { return parts_; }
  int rank() const { return rank_; }
  int64_t size() const { return size_; }  // elements of the shard
  const std::vector<ShardPiece>& pieces() const { return pieces_; }  // one per unit, in unit order
  const ShardPiece& piece(int unit) const { return pieces_[size_t(unit)]; }
  std::vector<FlatRange> ranges() const;

 private:
  int parts_, rank_;
  int64_t size_ = 0;
  std::vector<ShardPiece> pieces_;
};

}  // namespace lct
