#include "data/byte_file.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "token file readers assume a little-endian host");

namespace lct {

// Shard lists can hold thousands of files, each kept open for pread: lift the soft descriptor limit
// to the hard one the first time an open fails for lack of descriptors.
static bool raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return false;
  lim.rlim_cur = lim.rlim_max;
  return setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

ByteFile::ByteFile(const std::string& path) : path_(path) {
  // O_NONBLOCK: opening a FIFO (or a device) for reading must not wait for a writer; the fstat
  // below rejects anything that is not a regular file, where the flag changes nothing.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0 && errno == EMFILE && raise_fd_limit()) fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0) {
    const int e = errno;
    if (e == ENOENT) throw InputError(str("data file ", path, ": no such file; check the [data] paths"));
    if (e == EMFILE)
      throw InputError(str("data file ", path, ": too many open files (", strerror(e),
                           "); raise `ulimit -n` or merge shards"));
    throw InputError(str("data file ", path, ": cannot open: ", strerror(e)));
  }
  struct stat st{};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw InputError(str("data file ", path, ": not a regular file"));
  }
  size_ = int64_t(st.st_size);
}

ByteFile::~ByteFile() {
  if (fd_ >= 0) ::close(fd_);
}

ByteFile::ByteFile(ByteFile&& o) noexcept : path_(std::move(o.path_)), fd_(o.fd_), size_(o.size_) { o.fd_ = -1; }

ByteFile& ByteFile::operator=(ByteFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    fd_ = o.fd_;
    size_ = o.size_;
    o.fd_ = -1;
  }
  return *this;
}

void ByteFile::read(int64_t offset, void* dst, size_t n) const {
  if (offset < 0) throw InputError(str("data file ", path_, ": negative byte offset ", offset));
  char* out = static_cast<char*>(dst);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd_, out + done, n - done, off_t(offset + int64_t(done)));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw InputError(str("data file ", path_, ": read error at byte offset ", offset + int64_t(done), ": ",
                           strerror(errno)));
    }
    if (r == 0)
      throw InputError(str("data file ", path_, ": truncated: needed ", n, " bytes at byte offset ", offset,
                           " but the file ends at byte ", offset + int64_t(done),
                           "; the file was cut short or changed while training"));
    done += size_t(r);
  }
}

}  // namespace lct
