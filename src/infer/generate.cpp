#include "infer/generate.h"

#include <algorithm>

#include "core/timer.h"
#include "ops/owned_buffers.h"

namespace lct {

void require_ring_only_cp(const ParallelConfig& pc, const char* what) {
  if (pc.cp_a2a > 1)
    throw InputError(str(what, ": generation does not support parallel.cp_comm_type = ", pc.cp_comm_type,
                         " (an all-to-all group of ", pc.cp_a2a, " ranks); use p2p: set parallel.cp_comm_type = p2p ",
                         "(and leave parallel.hierarchical_cp_sizes empty) for this command"),
                     true);
}

GenerationResult generate(LlamaDecoder& dec, Ops& ops, Comm* tp, Comm* cp, const std::vector<int32_t>& prompt,
                          const GenerationOptions& o) {
  GenerationResult r;
  Sampler sampler(o.sampling);
  const bool root = (!tp || tp->rank() == 0) && (!cp || cp->rank() == 0);
  OwnedBuffers scratch(ops);  // frees tok also when prefill, decode or a broadcast throws
  Tensor tok = scratch.alloc(DType::I32, {1});
  double t0 = now_seconds();
  const std::vector<double>* logits = &dec.prefill(prompt, o.max_new);
  r.prefill_s = now_seconds() - t0;
  t0 = now_seconds();
  for (int64_t i = 0; i < o.max_new; ++i) {
    int32_t id = root ? sampler.pick(*logits) : 0;
    // tp first (within each cp position), then cp from cp rank 0, whose tp rank 0 picked it.
    ops.from_host(tok, &id);
    if (tp) tp->broadcast(tok, 0);
    if (cp) cp->broadcast(tok, 0);
    ops.to_host(&id, tok);
    r.ids.push_back(id);
    if (o.keep_logits) r.logits.push_back(*logits);
    if (std::find(o.stop_ids.begin(), o.stop_ids.end(), id) != o.stop_ids.end()) {
      r.stopped = true;
      break;
    }
    if (i + 1 < o.max_new) logits = &dec.decode(id);
  }
  r.decode_s = now_seconds() - t0;
  return r;
}

}  // namespace lct
