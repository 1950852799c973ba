// Read-only random access to one file with pread. The readers never map or load whole files: they
// read exactly the byte ranges a sample needs, so memory stays flat whatever the file size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace lct {

class ByteFile {
 public:
  // Opens `path` for reading; InputError if it is missing, a directory, or unreadable.
  explicit ByteFile(const std::string& path);
  ~ByteFile();
  ByteFile(ByteFile&& other) noexcept;
  ByteFile& operator=(ByteFile&& other) noexcept;
  ByteFile(const ByteFile&) = delete;
  ByteFile& operator=(const ByteFile&) = delete;

  const std::string& path() const { return path_; }
  int64_t size() const { return size_; }  // at open time
  // Reads exactly n bytes at `offset` (thread-safe). A range past the end of the file is an
  // InputError naming the file and the offset (the file is truncated, or shrank since it was opened).
  void read(int64_t offset, void* dst, size_t n) const;

 private:
  std::string path_;
  int fd_ = -1;
  int64_t size_ = 0;
};

// Little-endian scalar from a byte buffer (our formats are little-endian; so is every host we build on).
template <class T> T load_le(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace lct
