// The machine model behind `lctrain --plan`: link bandwidth per link class, per-message latency,
// device FLOP rate and memory. A preset (cluster.preset) gives every number; each nonzero
// [cluster] key overrides one. Numbers are per GPU and per direction, in decimal units
// (1 GB/s = 1e9 bytes/s). docs/parallel.md says where each preset value comes from.
#pragma once

#include <string>

#include "deck/config.h"
#include "parallel/layout.h"

namespace lct {

struct ClusterModel {
  std::string preset;
  std::string description;        // one line for the report
  int gpus_per_node = 8;
  double intra_node_GBps = 0;     // GPU to GPU inside a node (NVLink or PCIe)
  double inter_node_GBps = 0;     // one NIC = one rail
  double cross_rail_penalty = 1;  // a cross-rail hop runs at inter_node_GBps / penalty
  double latency_s = 0;           // alpha: fixed cost of every message
  double peak_tflops = 0;         // dense bf16 peak of the device
  double device_tflops = 0;       // sustained rate the estimate uses (= peak * mfu)
  double mfu = 0;                 // device_tflops / peak_tflops (the assumed efficiency)
  double device_memory_gib = 0;

  // Bytes per second over a link of class c (Self: effectively free).
  double bandwidth(LinkClass c) const;
};

// The preset named by c.preset with c's nonzero keys applied; InputError for a penalty below 1.
ClusterModel make_cluster_model(const ClusterConfig& c);

}  // namespace lct
