// Finding added tokens (special tokens such as <|eot_id|>) in raw text, before pre-tokenization, as
// HF's AddedVocabulary does: scanning left to right, at each position the longest token that starts
// there wins (leftmost-longest).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lct {

// A piece of text: either plain text (id -1) or one added token.
struct TextSegment {
  std::string_view text;
  int32_t id = -1;
};

class AddedTokenMatcher {
 public:
  void add(const std::string& content, int32_t id, bool special);
  bool empty() const { return nodes_.size() <= 1; }
  // Appends the segments of text to *out. Special tokens are skipped when !match_special.
  void split(std::string_view text, bool match_special, std::vector<TextSegment>* out) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;  // sorted by byte
    int32_t id = -1;  // token that ends here
    bool special = false;
  };
  int32_t child(int32_t node, unsigned char b) const;
  // Longest token starting at text[i]: its length (0 if none) and id.
  size_t longest_at(std::string_view text, size_t i, bool match_special, int32_t* id) const;

  std::vector<Node> nodes_ = std::vector<Node>(1);  // nodes_[0] is the root
  bool first_byte_[256] = {};
};

}  // namespace lct
