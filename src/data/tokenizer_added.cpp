#include "data/tokenizer_added.h"

#include <algorithm>

namespace lct {

int32_t AddedTokenMatcher::child(int32_t node, unsigned char b) const {
  const auto& ch = nodes_[size_t(node)].children;
  auto it = std::lower_bound(ch.begin(), ch.end(), b,
                             [](const std::pair<unsigned char, int32_t>& p, unsigned char x) { return p.first < x; });
  return it != ch.end() && it->first == b ? it->second : -1;
}

void AddedTokenMatcher::add(const std::string& content, int32_t id, bool special) {
  if (content.empty()) return;
  int32_t node = 0;
  for (char c : content) {
    unsigned char b = static_cast<unsigned char>(c);
    int32_t next = child(node, b);
    if (next < 0) {
      next = int32_t(nodes_.size());
      nodes_.emplace_back();
      auto& ch = nodes_[size_t(node)].children;
      ch.insert(std::upper_bound(ch.begin(), ch.end(), std::make_pair(b, int32_t(-1)),
                                 [](const auto& x, const auto& y) { return x.first < y.first; }),
                {b, next});
    }
    node = next;
  }
  nodes_[size_t(node)].id = id;
  nodes_[size_t(node)].special = special;
  first_byte_[static_cast<unsigned char>(content[0])] = true;
}

size_t AddedTokenMatcher::longest_at(std::string_view text, size_t i, bool match_special, int32_t* id) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t k = i; k < text.size(); ++k) {
    node = child(node, static_cast<unsigned char>(text[k]));
    if (node < 0) break;
    const Node& n = nodes_[size_t(node)];
    if (n.id >= 0 && (match_special || !n.special)) {
      best = k + 1 - i;
      *id = n.id;
    }
  }
  return best;
}

void AddedTokenMatcher::split(std::string_view text, bool match_special, std::vector<TextSegment>* out) const {
  size_t start = 0;  // start of the pending plain text
  for (size_t i = 0; i < text.size();) {
    int32_t id = -1;
    size_t len = first_byte_[static_cast<unsigned char>(text[i])] ? longest_at(text, i, match_special, &id) : 0;
    if (len == 0) {
      ++i;
      continue;
    }
    if (i > start) out->push_back({text.substr(start, i - start), -1});
    out->push_back({text.substr(i, len), id});
    i += len;
    start = i;
  }
  if (start < text.size()) out->push_back({text.substr(start), -1});
}

}  // namespace lct
