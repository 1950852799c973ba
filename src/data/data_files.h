// From the [data] train list to opened token files: expanding globs and directories, recognising
// each file's format by its first bytes, and pairing Megatron's .idx with its .bin.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/token_file.h"

namespace lct {

// The format of one file by content: llm.c magic, Megatron "MMIDIDX" (.idx, or a .bin whose .idx
// sits beside it), or the HDF5 signature. InputError naming the file otherwise.
TokenFormat detect_format(const std::string& path);

// Expands each entry in order: a directory gives its regular files (not starting with '.'), a
// pattern with * ? [ gives its matches, sorted; an empty match is an InputError. A Megatron pair
// becomes one entry (its .idx) and a Megatron prefix given without extension is accepted.
// `format`: "auto" or a format name; each result is checked against it.
std::vector<std::string> expand_data_paths(const std::vector<std::string>& entries, const std::string& format);

// Opens one file (format "auto" detects it).
std::unique_ptr<TokenFile> open_token_file(const std::string& path, const std::string& format = "auto");

}  // namespace lct
