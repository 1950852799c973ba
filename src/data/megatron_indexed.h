// Megatron-LM indexed datasets: `prefix.bin` holds the token ids back to back; `prefix.idx` is,
// little-endian: 9-byte magic "MMIDIDX\0\0", u64 version (1), u8 dtype code, u64 sequence count S,
// u64 document-index count D (documents + 1), int32[S] sequence lengths, int64[S] byte offsets of
// the sequences in .bin, int64[D] document index (first sequence of each document; first 0, last S),
// optionally int8[S] sequence modes (multimodal). A document is one or more sequences.
#pragma once

#include <memory>
#include <string>

#include "data/token_file.h"
#include "data/token_writer.h"

namespace lct {

constexpr char kMegatronMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
constexpr int64_t kMegatronHeaderBytes = 9 + 8 + 1 + 8 + 8;

// Megatron dtype codes -> on-disk types; only the integer codes can hold tokens.
bool megatron_dtype(int code, TokenDType* out);
int megatron_dtype_code(TokenDType t);  // 0 when the type has no integer code

// The prefix of a dataset named by its prefix, prefix.idx or prefix.bin.
std::string megatron_prefix(const std::string& path);

// Opens and validates both files: header, counts against the .idx size, lengths and offsets
// consistent and back to back, document index monotone from 0 to S, .bin size = tokens x itemsize.
// The index is checked in pieces; nothing proportional to the dataset stays in memory.
std::unique_ptr<TokenFile> open_megatron_dataset(const std::string& path);

// Writes prefix.idx and prefix.bin with one sequence per document, as Megatron's
// IndexedDatasetBuilder.add_document(tokens, [len(tokens)]) does.
std::unique_ptr<TokenWriter> make_megatron_writer(const std::string& path, const WriterPlan& plan);

}  // namespace lct
