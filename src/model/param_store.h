// Where a model's parameters and gradients live. The model uses them unit by unit
// (ParamTable::units: the embedding, each layer, the final norm with the LM head): it acquires a
// unit's weights before using them and releases them after, and acquires a unit's gradient buffer
// before its backward adds into it (+=), releasing it when that unit's backward of the micro-batch
// is done. The store decides what that costs: nothing when everything is resident (ResidentParams
// below; ZeRO 0 and 1), a reduce-scatter of the unit's gradients to their owners (ZeRO 2), an
// all-gather of the unit's weights from their shards (ZeRO 3), all in optim/zero_params.h. The
// model never knows the zero level.
#pragma once

#include <cstdint>
#include <vector>

#include "model/params.h"
#include "ops/ops.h"

namespace lct {

class ParamStore {
 public:
  virtual ~ParamStore() = default;
  virtual const ParamTable& table() const = 0;

  // Unit u's weights (act dtype), element table().units[u].begin at the returned address. Valid
  // until release_params(u). Acquires and releases of a unit pair up.
  virtual void* acquire_params(int u) = 0;
  virtual void release_params(int u) = 0;
  // A hint: unit u is acquired next (ZeRO 3 starts gathering it).
  virtual void prefetch_params(int u) { (void)u; }
  // Unit u's gradient buffer (acc dtype), same addressing; backward ops add into it.
  virtual void* acquire_grads(int u) = 0;
  virtual void release_grads(int u) = 0;
  // A micro-batch's backward is done: reductions still in flight complete.
  virtual void finish_backward() {}
  // A new optimizer step's gradients start from zero.
  virtual void zero_grads() = 0;

  // The whole flat buffers ([table().total], act / acc) when resident; empty tensors otherwise.
  virtual Tensor resident_params() const { return {}; }
  virtual Tensor resident_grads() const { return {}; }

  // The ranges of the flat space whose weights this rank holds between steps (resident:
  // everything; ZeRO 3: its shard), and setting exactly those from host fp32 values (their
  // elements concatenated in range order).
  virtual std::vector<FlatRange> held_ranges() const = 0;
  virtual void upload_held(const float* host) = 0;
  // Sets the held weights from a host fp32 vector of the whole table layout [table().total].
  void upload(const std::vector<float>& host);
};

// Everything resident: one flat buffer of weights and one of gradients (what a model owns when
// it is given no store: evaluation, conversion, tests).
class ResidentParams final : public ParamStore {
 public:
  ResidentParams(Ops& ops, ParamTable table);
  ~ResidentParams() override;
  ResidentParams(const ResidentParams&) = delete;
  ResidentParams& operator=(const ResidentParams&) = delete;

  const ParamTable& table() const override { return table_; }
  void* acquire_params(int u) override { return at(params_, u); }
  void release_params(int) override {}
  void* acquire_grads(int u) override { return at(grads_, u); }
  void release_grads(int) override {}
  void zero_grads() override { ops_.zero(grads_); }
  Tensor resident_params() const override { return params_; }
  Tensor resident_grads() const override { return grads_; }
  std::vector<FlatRange> held_ranges() const override { return {{0, table_.total}}; }
  void upload_held(const float* host) override;

 private:
  void* at(const Tensor& flat, int u) const;
  Ops& ops_;
  ParamTable table_;
  Tensor params_, grads_;
};

// Copies n host fp32 values into backend tensor `dst` (any float dtype; through an fp32 staging
// buffer when dst is not fp32).
void upload_f32(Ops& ops, Tensor dst, const float* host);

}  // namespace lct
