// The native lctrain token format: one HDF5 file (readable with h5py or h5dump) holding
//   /tokens       1-D little-endian integer ids (uint16 when the vocabulary fits, else uint32)
//   /doc_offsets  1-D int64, documents + 1 entries: document k is tokens[doc_offsets[k], doc_offsets[k+1])
//   /loss_mask    optional 1-D uint8, one 0/1 per token (chat data: 0 = not a target)
// and root attributes format_version (1), vocab_size, tokenizer, eod_token (-1 = none). Documents
// are stored without separators; the loader joins them with eod_token.
//
// HDF5 is used only while opening (in the constructing thread): the datasets must be contiguous and
// unfiltered, so their byte offsets are taken once and all token reads are plain preads. This keeps
// the prefetch thread away from the HDF5 library, which is not thread-safe in the parallel build.
#pragma once

#include <memory>
#include <string>

#include "data/token_file.h"
#include "data/token_writer.h"

namespace lct {

constexpr int64_t kHdf5TokensFormatVersion = 1;

std::unique_ptr<TokenFile> open_hdf5_tokens(const std::string& path);
bool is_hdf5_signature(const uint8_t* first8);

// Writes the native format (superblock v2+, so metadata carries checksums; no timestamps, so equal
// inputs give byte-identical files). plan.dtype sets the /tokens type.
std::unique_ptr<TokenWriter> make_hdf5_writer(const std::string& path, const WriterPlan& plan);

}  // namespace lct
