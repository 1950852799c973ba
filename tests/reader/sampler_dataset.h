// A small mixed dataset for the sampler tests: an llm.c shard, a Megatron pair and an HDF5 file with
// a loss mask and an eod attribute, so samples cross file and document boundaries.
#pragma once

#include "data/loader.h"
#include "data_test_util.h"

namespace lct::test {

constexpr int32_t kSamplerVocab = 700;
constexpr int32_t kSamplerEod = 699;

// Writes the files into `dir`; returns the stream the loader should see (documents + eod tokens)
// and its loss mask.
inline void write_sampler_dataset(const std::string& dir, std::vector<int32_t>* stream, std::vector<uint8_t>* mask) {
  struct Part {
    const char* name;
    TokenFormat format;
    bool with_mask;
  };
  for (const Part& p : {Part{"a_llmc.bin", TokenFormat::Llmc, false}, Part{"b_megatron", TokenFormat::Megatron, false},
                        Part{"c_native.h5", TokenFormat::Hdf5, true}}) {
    const auto docs = random_docs(uint64_t(p.format) + 11, 9, 0, 120, kSamplerEod, p.with_mask);
    write_documents(dir + "/" + p.name, p.format, docs, plan_for(kSamplerVocab, kSamplerEod));
    for (const auto& d : docs) {
      stream->insert(stream->end(), d.tokens.begin(), d.tokens.end());
      stream->push_back(kSamplerEod);
      if (d.loss_mask.empty()) mask->insert(mask->end(), d.tokens.size(), 1);
      mask->insert(mask->end(), d.loss_mask.begin(), d.loss_mask.end());
      mask->push_back(1);
    }
  }
}

inline DataOptions sampler_options(const std::string& dir, int prefetch, uint64_t seed = 1234) {
  DataOptions opt;
  opt.train = {dir + "/*.bin", dir + "/*.h5"};  // the Megatron pair is found through its .bin
  opt.vocab_size = kSamplerVocab;
  opt.seed = seed;
  opt.prefetch = prefetch;
  return opt;
}

inline bool same_samples(const std::vector<Sample>& a, const std::vector<Sample>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].tokens != b[i].tokens || a[i].loss_mask != b[i].loss_mask) return false;
  return true;
}

}  // namespace lct::test
