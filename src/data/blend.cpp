#include "data/blend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "core/error.h"

namespace lct {

namespace {

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

bool parse_number(const std::string& s, double& x) {
  char* end = nullptr;
  x = std::strtod(s.c_str(), &end);
  return end && *end == '\0' && end != s.c_str();
}

}  // namespace

std::vector<BlendPart> parse_blend(const std::vector<std::string>& items, const std::string& key) {
  bool any_weight = false;
  for (const std::string& item : items) any_weight = any_weight || words(item).size() > 1;
  if (!any_weight) {
    BlendPart all;
    for (const std::string& item : items) {
      const auto w = words(item);
      double x = 0;
      if (items.size() > 1 && w.size() == 1 && parse_number(w[0], x))
        throw InputError(str(key, ": the blend part '", item, "' is a weight that names no file; write 'WEIGHT PATH' ",
                             "for every part, e.g. 0.7 web/*.bin, 0.3 chat.h5"));
      if (!w.empty()) all.paths.push_back(w[0]);
    }
    return {all};
  }
  std::vector<BlendPart> parts;
  for (const std::string& item : items) {
    const auto w = words(item);
    if (w.empty()) continue;
    BlendPart p;
    if (!parse_number(w[0], p.weight) || !std::isfinite(p.weight) || p.weight <= 0) {
      if (w.size() == 1)
        throw InputError(str(key, ": '", item, "' has no weight while other parts of the blend have one; write "
                             "'WEIGHT PATH' for every part, e.g. 0.7 web/*.bin, 0.3 chat.h5"));
      throw InputError(str(key, ": the weight '", w[0], "' of the blend part '", item,
                           "' is not a positive number; write 'WEIGHT PATH', e.g. 0.3 chat.h5"));
    }
    if (w.size() == 1)
      throw InputError(str(key, ": the blend part '", item, "' is a weight that names no file; write 'WEIGHT PATH'"));
    p.paths.assign(w.begin() + 1, w.end());
    parts.push_back(p);
  }
  return parts;
}

BlendOrder::BlendOrder(std::vector<double> weights) : w_(std::move(weights)) {
  LCT_CHECK(!w_.empty(), "an empty blend");
  double largest = 0;
  for (double x : w_) {
    LCT_CHECK(x > 0 && std::isfinite(x), "blend weight ", x);
    largest = std::max(largest, x);
  }
  double sum = 0;  // of the weights scaled by the largest: finite even for weights near 1e308
  for (double& x : w_) sum += (x /= largest);
  for (double& x : w_) x /= sum;
  marks_.push_back(std::vector<int64_t>(w_.size(), 0));
}

int BlendOrder::pick(int64_t g, const std::vector<int64_t>& counts) const {
  int best = 0;
  double lag = -1e300;
  for (size_t d = 0; d < w_.size(); ++d) {
    const double l = w_[d] * double(g + 1) - double(counts[d]);
    if (l > lag) lag = l, best = int(d);
  }
  return best;
}

void BlendOrder::extend_to(size_t k) const {
  while (marks_.size() <= k) {
    std::vector<int64_t> c = marks_.back();
    const int64_t g0 = int64_t(marks_.size() - 1) * kStride;
    for (int64_t g = g0; g < g0 + kStride; ++g) ++c[size_t(pick(g, c))];
    marks_.push_back(std::move(c));
  }
}

std::pair<int, int64_t> BlendOrder::at(int64_t g) const {
  LCT_CHECK(g >= 0, "sample index ", g);
  const size_t k = size_t(g / kStride);
  std::vector<int64_t> c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    extend_to(k);
    c = marks_[k];
  }
  for (int64_t i = int64_t(k) * kStride; i < g; ++i) ++c[size_t(pick(i, c))];
  const int d = pick(g, c);
  return {d, c[size_t(d)]};
}

}  // namespace lct
