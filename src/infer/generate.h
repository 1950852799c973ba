// The generation loop over a LlamaDecoder: prefill, then pick a token, broadcast it from the
// replica's first rank (tp rank 0, cp rank 0) so every rank feeds the same id, decode, repeat.
#pragma once

#include <cstdint>
#include <vector>

#include "infer/llama_decoder.h"
#include "infer/sampling.h"

namespace lct {

struct GenerationOptions {
  int64_t max_new = 64;
  SamplingOptions sampling;
  std::vector<int32_t> stop_ids;  // generation ends after emitting one of these (it is kept)
  bool keep_logits = false;       // GenerationResult::logits: the logits each token was picked from
};

struct GenerationResult {
  std::vector<int32_t> ids;                  // generated ids (not the prompt)
  std::vector<std::vector<double>> logits;   // per generated token, when keep_logits
  double prefill_s = 0, decode_s = 0;
  bool stopped = false;                      // ended on a stop id
};

// InputError (collective: every rank reaches it alike) when the layout has an all-to-all group:
// decoding (--generate, RULER tasks) runs over the ring only. `what` names the entry point.
void require_ring_only_cp(const ParallelConfig& pc, const char* what);

// Collective over the replica's tp and cp groups (null when 1). Every rank returns the same result.
GenerationResult generate(LlamaDecoder& dec, Ops& ops, Comm* tp, Comm* cp, const std::vector<int32_t>& prompt,
                          const GenerationOptions& o);

}  // namespace lct
