#include "eval/niah_table.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "core/error.h"
#include "core/text_file.h"

namespace lct {

std::string niah_csv_text(const std::vector<EvalCell>& cells, bool nll) {
  std::string out = nll ? "length,depth,samples,accuracy,token_accuracy,answer_nll\n" : "length,depth,samples,accuracy,token_accuracy\n";
  char buf[160];
  for (const EvalCell& c : cells) {
    std::snprintf(buf, sizeof buf, "%lld,%lld,%lld,%.6f,%.6f", (long long)c.length, (long long)c.depth,
                  (long long)c.samples, c.accuracy(), c.token_accuracy());
    out += buf;
    if (nll) std::snprintf(buf, sizeof buf, ",%.6f", c.answer_nll()), out += buf;
    out += "\n";
  }
  return out;
}

void write_niah_csv(const std::string& path, const std::vector<EvalCell>& cells, bool nll) {
  write_text_file_atomically(path, niah_csv_text(cells, nll), "is run.out_dir writable?");
}

std::string niah_table_text(const std::vector<EvalCell>& cells, const std::string& title) {
  std::vector<int64_t> lengths, depths;
  std::map<std::pair<int64_t, int64_t>, const EvalCell*> at;
  for (const EvalCell& c : cells) {
    if (std::find(lengths.begin(), lengths.end(), c.length) == lengths.end()) lengths.push_back(c.length);
    if (std::find(depths.begin(), depths.end(), c.depth) == depths.end()) depths.push_back(c.depth);
    at[{c.length, c.depth}] = &c;
  }
  char buf[64];
  std::string out = title + "\n";
  out += "depth \\ length";
  for (int64_t L : lengths) std::snprintf(buf, sizeof buf, "%9lld", (long long)L), out += buf;
  out += "\n";
  for (int64_t d : depths) {
    std::snprintf(buf, sizeof buf, "%13lld%%", (long long)d);
    out += buf;
    for (int64_t L : lengths) {
      auto it = at.find({L, d});
      if (it == at.end()) out += "        -";
      else std::snprintf(buf, sizeof buf, "%8.0f%%", 100.0 * it->second->accuracy()), out += buf;
    }
    out += "\n";
  }
  out += "          mean";
  for (int64_t L : lengths) {
    int64_t n = 0, k = 0;
    for (const EvalCell& c : cells)
      if (c.length == L) n += c.samples, k += c.correct;
    std::snprintf(buf, sizeof buf, "%8.1f%%", n ? 100.0 * double(k) / double(n) : 0.0);
    out += buf;
  }
  out += "\n";
  return out;
}

}  // namespace lct
