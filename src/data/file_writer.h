// A buffered output file that appears under its final name only when closed: it is written to
// "<path>.partial" and renamed, so an interrupted writer never leaves a file that looks complete.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "data/token_file.h"

namespace lct {

class FileWriter {
 public:
  explicit FileWriter(const std::string& path);  // InputError if the folder is missing or not writable
  ~FileWriter();                                 // without close(): removes the partial file
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  void write(const void* data, size_t n);
  // Stores ids as little-endian integers of type t; an id that does not fit t is an InputError.
  void write_ids(const int32_t* ids, int64_t n, TokenDType t);
  int64_t bytes_written() const { return written_; }
  void close();  // flushes, checks for write errors, renames to the final name

 private:
  std::string path_, partial_;
  std::FILE* f_ = nullptr;
  int64_t written_ = 0;
};

}  // namespace lct
