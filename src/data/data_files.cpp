#include "data/data_files.h"

#include <dirent.h>
#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "core/error.h"
#include "data/byte_file.h"
#include "data/hdf5_tokens.h"
#include "data/llmc_shard.h"
#include "data/megatron_indexed.h"

namespace lct {

namespace {

bool is_file(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool is_dir(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
bool has_megatron_magic(const std::string& p) {
  if (!is_file(p)) return false;
  ByteFile f(p);
  char m[9];
  if (f.size() < 9) return false;
  f.read(0, m, 9);
  return std::memcmp(m, kMegatronMagic, 9) == 0;
}

}  // namespace

// InputError when `path` is recognisably a format other than `want`; an unrecognisable file passes
// (the reader for `want` reports what is wrong with it).
static void check_format(const std::string& path, TokenFormat want) {
  TokenFormat got;
  try {
    got = detect_format(path);
  } catch (const InputError&) {
    return;
  }
  if (got != want)
    throw InputError(str("data file ", path, ": [data] format is ", format_name(want), " but the file is ",
                         format_name(got), " (by its first bytes); set format = auto or fix the list"));
}

TokenFormat detect_format(const std::string& path) {
  if (!is_file(path) && is_file(path + ".idx")) return TokenFormat::Megatron;  // a prefix
  ByteFile f(path);
  uint8_t head[16] = {0};
  const size_t n = size_t(std::min<int64_t>(f.size(), 16));
  f.read(0, head, n);
  if (n >= 8 && is_hdf5_signature(head)) return TokenFormat::Hdf5;
  if (n >= 9 && std::memcmp(head, kMegatronMagic, 9) == 0) return TokenFormat::Megatron;
  if (n >= 4 && is_llmc_magic(load_le<int32_t>(head))) return TokenFormat::Llmc;
  if (ends_with(path, ".bin") && has_megatron_magic(megatron_prefix(path) + ".idx")) return TokenFormat::Megatron;
  throw InputError(str("data file ", path, ": unrecognised format (the first bytes, at byte offset 0, are not an llm.c magic "
                       "20240520/20240801, Megatron's \"MMIDIDX\", or the HDF5 signature); see docs/data.md"));
}

std::unique_ptr<TokenFile> open_token_file(const std::string& path, const std::string& format) {
  TokenFormat detected;
  if (format == "auto") {
    detected = detect_format(path);
  } else {
    // The named format's reader checks the magic itself and says exactly what is wrong; a file
    // that is recognisably another format gets the clearer message.
    detected = parse_format(format, "[data] format");
    check_format(path, detected);
  }
  switch (detected) {
    case TokenFormat::Llmc: return open_llmc_shard(path);
    case TokenFormat::Megatron: return open_megatron_dataset(path);
    case TokenFormat::Hdf5: return open_hdf5_tokens(path);
  }
  return nullptr;
}

std::vector<std::string> expand_data_paths(const std::vector<std::string>& entries, const std::string& format) {
  if (format != "auto") parse_format(format, "[data] format");
  if (entries.empty()) throw InputError("[data] train: no data files given; name files, globs or directories");
  std::vector<std::string> out;
  for (const std::string& e : entries) {
    std::vector<std::string> found;
    if (is_dir(e)) {
      DIR* d = ::opendir(e.c_str());
      if (!d) throw InputError(str("[data] train: cannot list directory ", e));
      while (dirent* de = ::readdir(d)) {
        const std::string name = de->d_name;
        const std::string p = e + (ends_with(e, "/") ? "" : "/") + name;
        if (name[0] != '.' && is_file(p)) found.push_back(p);
      }
      ::closedir(d);
      if (found.empty()) throw InputError(str("[data] train: directory ", e, " holds no files"));
    } else if (e.find_first_of("*?[") != std::string::npos) {
      glob_t g{};
      const int rc = ::glob(e.c_str(), 0, nullptr, &g);
      for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i)
        if (is_file(g.gl_pathv[i])) found.push_back(g.gl_pathv[i]);
      ::globfree(&g);
      if (found.empty()) throw InputError(str("[data] train: the pattern '", e, "' matches no files"));
    } else {
      if (!is_file(e) && !is_file(e + ".idx"))
        throw InputError(str("[data] train: ", e, ": no such file (nor a Megatron prefix with ", e, ".idx)"));
      found.push_back(e);
    }
    std::sort(found.begin(), found.end());
    // A Megatron .bin whose .idx is also listed is the same dataset: keep the .idx only.
    std::set<std::string> listed(found.begin(), found.end());
    for (const std::string& p : found) {
      if (ends_with(p, ".bin") && listed.count(megatron_prefix(p) + ".idx") &&
          has_megatron_magic(megatron_prefix(p) + ".idx"))
        continue;
      out.push_back(p);
    }
  }
  for (const std::string& p : out) {
    if (format == "auto") detect_format(p);
    else check_format(p, parse_format(format, "[data] format"));
  }
  return out;
}

}  // namespace lct
