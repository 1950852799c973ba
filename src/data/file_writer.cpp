#include "data/file_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace lct {

FileWriter::FileWriter(const std::string& path) : path_(path), partial_(path + ".partial") {
  f_ = std::fopen(partial_.c_str(), "wb");
  if (!f_) throw InputError(str(path, ": cannot create output file: ", strerror(errno)));
}

FileWriter::~FileWriter() {
  if (f_) {
    std::fclose(f_);
    std::remove(partial_.c_str());
  }
}

void FileWriter::write(const void* data, size_t n) {
  LCT_CHECK(f_, "write after close of ", path_);
  if (n && std::fwrite(data, 1, n, f_) != n)
    throw Error(kExitFailure, str(path_, ": write failed at byte ", written_, ": ", strerror(errno)));
  written_ += int64_t(n);
}

void FileWriter::write_ids(const int32_t* ids, int64_t n, TokenDType t) {
  const int64_t lo = t.is_signed ? -(int64_t(1) << (t.bytes * 8 - 1)) : 0;
  const int64_t hi = t.bytes >= 8 ? INT64_MAX : (int64_t(1) << (t.bytes * 8 - (t.is_signed ? 1 : 0))) - 1;
  std::vector<uint8_t> buf(size_t(std::min<int64_t>(n, 1 << 16) * t.bytes));
  for (int64_t done = 0; done < n;) {
    const int64_t m = std::min<int64_t>(n - done, 1 << 16);
    for (int64_t i = 0; i < m; ++i) {
      const int64_t v = ids[done + i];
      if (v < lo || v > hi)
        throw InputError(str(path_, ": token id ", v, " does not fit the file's ", dtype_name(t),
                             " ids; use a wider type (a larger vocab_size picks uint32)"));
      std::memcpy(buf.data() + i * t.bytes, &v, size_t(t.bytes));  // little-endian: low bytes first
    }
    write(buf.data(), size_t(m * t.bytes));
    done += m;
  }
}

void FileWriter::close() {
  LCT_CHECK(f_, "double close of ", path_);
  const bool ok = std::fflush(f_) == 0 && !std::ferror(f_);
  const int e = errno;
  std::fclose(f_);
  f_ = nullptr;
  if (!ok) {
    std::remove(partial_.c_str());
    throw Error(kExitFailure, str(path_, ": write failed: ", strerror(e)));
  }
  if (std::rename(partial_.c_str(), path_.c_str()) != 0)
    throw Error(kExitFailure, str(path_, ": cannot rename ", partial_, " into place: ", strerror(errno)));
}

}  // namespace lct
