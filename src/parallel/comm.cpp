#include "parallel/comm.h"

namespace lct {

void Traffic::add(int world_dst, int64_t bytes, Kind kind) {
  std::lock_guard<std::mutex> lock(mu_);
  const LinkClass c = topo_ ? link_class(*topo_, me_, world_dst) : LinkClass::IntraNode;
  by_class_[int(c)] += bytes;
  if (kind == P2P) {
    p2p_[world_dst] += bytes;
    ++p2p_msgs_;
  } else if (kind == AllToAll) {
    a2a_[world_dst] += bytes;
    a2a_total_ += bytes;
  } else {
    coll_ += bytes;
  }
}

int64_t Traffic::bytes(LinkClass c) const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_class_[int(c)];
}

int64_t Traffic::p2p_bytes_to(int world_dst) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = p2p_.find(world_dst);
  return it == p2p_.end() ? 0 : it->second;
}

std::map<int, int64_t> Traffic::p2p_peers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return p2p_;
}

int64_t Traffic::p2p_messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return p2p_msgs_;
}

int64_t Traffic::collective_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return coll_;
}

int64_t Traffic::a2a_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return a2a_total_;
}

std::map<int, int64_t> Traffic::a2a_peers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return a2a_;
}

void Traffic::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& b : by_class_) b = 0;
  p2p_.clear();
  a2a_.clear();
  p2p_msgs_ = 0;
  coll_ = 0;
  a2a_total_ = 0;
}

}  // namespace lct
