#include "model/llama.h"
#include "parallel/context.h"

namespace lct {

ModelShape training_shape(const Config& c, const ParallelContext& ctx) {
  ModelShape shape;
  shape.micro_batch = c.train.micro_batch;
  shape.seq_len = c.train.seq_len;
  shape.tp = ctx.layout.tp;
  shape.tp_rank = ctx.me().tp_rank;
  shape.cp = ctx.layout.cp;
  shape.cp_rank = ctx.me().cp_rank;
  shape.cp_a2a = ctx.layout.cp_a2a;
  shape.sequence_parallel = c.parallel.sequence_parallel;
  shape.zigzag = c.parallel.zigzag;
  shape.recompute = c.train.recompute == "layer";
  shape.attention_tile = c.run.attention_tile;
  shape.unit_padding = c.parallel.zero >= 1 ? ctx.dpcp->size() : 1;
  shape.offload_layer_inputs = c.train.offload == "activations" || c.train.offload == "both";
  return shape;
}

}  // namespace lct
