#include "parallel/cluster.h"

#include "core/error.h"

namespace lct {

double ClusterModel::bandwidth(LinkClass c) const {
  switch (c) {
    case LinkClass::Self: return 1e15;
    case LinkClass::IntraNode: return intra_node_GBps * 1e9;
    case LinkClass::SameRail: return inter_node_GBps * 1e9;
    case LinkClass::CrossRail: return inter_node_GBps * 1e9 / cross_rail_penalty;
  }
  return 0;
}

ClusterModel make_cluster_model(const ClusterConfig& c) {
  ClusterModel m;
  m.preset = c.preset;
  if (c.preset == "l40s") {
    // Gradient's L40S nodes: 8 GPUs, no NVLink (GPU to GPU over PCIe Gen4 x16, ~25 GB/s usable),
    // assumed one 200 Gb/s NIC per GPU on its own rail (PCIe Gen4 x16 cannot feed more).
    m.gpus_per_node = 8;
    m.intra_node_GBps = 25;
    m.inter_node_GBps = 25;
    m.cross_rail_penalty = 2;
    m.latency_s = 10e-6;
    m.peak_tflops = 362;
    m.device_memory_gib = 45.0;  // 48 GB GDDR6; 46068 MiB usable as nvidia-smi reports it
  } else {
    // H100 SXM nodes (DGX/HGX): 8 GPUs, NVLink 4 (900 GB/s both directions = 450 GB/s each way),
    // 8 x 400 Gb/s ConnectX-7 rails (50 GB/s per GPU); a cross-rail hop climbs to the spine.
    m.gpus_per_node = 8;
    m.intra_node_GBps = 450;
    m.inter_node_GBps = 50;
    m.cross_rail_penalty = 2;
    m.latency_s = 5e-6;
    m.peak_tflops = 989;
    m.device_memory_gib = 79.6;  // 80 GB HBM3; 81559 MiB as nvidia-smi reports it
  }
  m.mfu = 0.40;  // assumed sustained fraction of the dense bf16 peak (docs/parallel.md)
  if (c.intra_node_gbps > 0) m.intra_node_GBps = c.intra_node_gbps;
  if (c.inter_node_gbps > 0) m.inter_node_GBps = c.inter_node_gbps;
  if (c.cross_rail_penalty > 0) {
    if (c.cross_rail_penalty < 1)
      throw InputError(str("cluster.cross_rail_penalty = ", c.cross_rail_penalty,
                           " must be >= 1: a cross-rail hop runs at inter_node_gbps / penalty (1 = no penalty)"));
    m.cross_rail_penalty = c.cross_rail_penalty;
  }
  if (c.latency_us > 0) m.latency_s = c.latency_us * 1e-6;
  m.device_tflops = m.peak_tflops * m.mfu;
  if (c.device_tflops > 0) {
    m.device_tflops = c.device_tflops;
    m.mfu = m.device_tflops / m.peak_tflops;
  }
  if (c.device_memory_gib > 0) m.device_memory_gib = c.device_memory_gib;
  m.description = str(m.preset, ": ", m.gpus_per_node, " GPUs/node, intra-node ", m.intra_node_GBps, " GB/s, rail ",
                      m.inter_node_GBps, " GB/s, cross-rail / ", m.cross_rail_penalty, ", latency ",
                      m.latency_s * 1e6, " us, ", m.device_tflops, " TFLOP/s sustained (", m.mfu * 100, "% of ",
                      m.peak_tflops, " peak), ", m.device_memory_gib, " GiB");
  return m;
}

}  // namespace lct
