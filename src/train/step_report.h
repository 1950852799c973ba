// What a training step reports beyond the loss, gathered over the ranks for metrics.jsonl: memory
// per rank, sequences per rank, ring attention work/time/overlap, bytes sent by link class and the
// point-to-point pairs. Collective over ctx.world (the lists are complete on rank 0).
#pragma once

#include <string>

#include "attention/ring_attention.h"
#include "ops/ops.h"
#include "parallel/context.h"
#include "train/metrics.h"

namespace lct {

// Peak RSS per rank (and their max), peak backend bytes (max over ranks).
void gather_memory(ParallelContext& ctx, Ops& ops, StepMetrics& m);

// `"device_peak_bytes": {"weights": [per rank], ..., "total": [...]}, "host_peak_bytes": {...}`:
// each category's own high-water mark on each rank (ops/ops.h, Mem), device and offload host pools;
// `"device_used_bytes": [...]`: what the device reports in use at the step's end (cuda; -1 on cpu).
std::string memory_json(ParallelContext& ctx, Ops& ops);

// `"samples_per_rank": [...], "global_batch": G`.
std::string samples_json(ParallelContext& ctx, int64_t mine, int64_t global_batch);

// Ring attention figures and traffic by link class, per rank and in total; p2p pairs.
std::string ring_and_traffic_json(ParallelContext& ctx, const RingStats& rs);

}  // namespace lct
