// Small text outputs (CSV, JSON lines, effective decks, HF configs) written so that a reader never
// sees half a file: write PATH.tmp, then rename it over PATH (atomic on one file system).
#pragma once

#include <string>

namespace lct {

// Error (exit code 1) naming the file and `hint` (e.g. "is run.out_dir writable?") when the write or
// the rename fails.
void write_text_file_atomically(const std::string& path, const std::string& text, const std::string& hint = "");

// The whole of a text input named by `key` (a deck key or an option, for messages): InputError when
// it is missing, a directory, unreadable, or (unless allow_empty: a document may be) holds nothing
// but white space.
std::string read_text_input(const std::string& path, const std::string& key, bool allow_empty = false);

}  // namespace lct
