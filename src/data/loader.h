// The training data loader: samples of seq_len + 1 tokens cut from the concatenated document stream,
// visited in a seeded order, sliced across data-parallel replicas, prepared ahead by a background
// thread. A blend (data/blend.h: "0.7 web/*.bin, 0.3 chat.h5") is one stream and order per dataset,
// interleaved by weight. Definitions (sample, epoch, cursor): docs/data.md.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/blend.h"
#include "data/sample_order.h"
#include "data/token_stream.h"

namespace lct {

struct DataOptions {
  std::vector<std::string> train;   // files, globs, or directories; expanded and sorted; empty glob -> InputError;
                                    // or a blend: "WEIGHT PATH..." items (data/blend.h)
  std::string format = "auto";      // auto | llmc | megatron | hdf5
  int64_t vocab_size = 0;           // every token id must be < vocab_size (InputError naming file and offset)
  int32_t eod_token = -1;           // joins documents; -1 = from the file's attributes if present, else none
  bool shuffle = true;
  uint64_t seed = 0;
  int prefetch = 2;                 // steps prepared ahead by a background thread (>= 0; 0 = synchronous)
  std::string key = "[data] train"; // the deck key these files come from, for messages
};

struct Sample {
  std::vector<int32_t> tokens;      // seq_len + 1 tokens: inputs tokens[0..T), targets tokens[1..T]
  std::vector<uint8_t> loss_mask;   // seq_len + 1 entries, mask[i] says whether tokens[i] counts as a target; empty = all count
  int dataset = 0;                  // which dataset of a blend it comes from
};

class DataLoader {
 public:
  // samples_per_step = the GLOBAL batch in samples (micro_batch * grad_accum * dp); this dp replica
  // gets the contiguous slice [dp_rank * n, (dp_rank + 1) * n) of each global step, n = samples_per_step / dp_size.
  DataLoader(const DataOptions& opt, int64_t seq_len, int64_t samples_per_step, int dp_rank, int dp_size);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  std::vector<Sample> next_step();           // this replica's samples of the next global step, in order
  int64_t cursor() const;                     // global index of the first sample of the next step to be returned
  void seek(int64_t cursor);                  // drops prefetched steps; the next next_step() starts at cursor
  int64_t samples_per_epoch() const;        // a blend: summed over its datasets
  int64_t total_tokens() const;
  int32_t eod_token() const;

  int64_t seq_len() const { return seq_len_; }
  int64_t samples_per_step() const { return samples_per_step_; }
  bool has_loss_mask() const;
  const TokenStream& stream(size_t dataset = 0) const { return *sets_[dataset].stream; }
  size_t num_datasets() const { return sets_.size(); }
  // Global sample g (any epoch) as a Sample, read synchronously: what next_step() is made of.
  Sample read_sample(int64_t g) const;

 private:
  struct Step {
    int64_t cursor = 0;
    std::vector<Sample> samples;
    std::exception_ptr error;
  };
  Step make_step(int64_t cursor) const;
  void start_prefetch();
  void stop_prefetch();
  void prefetch_loop();

  struct Dataset {
    std::unique_ptr<TokenStream> stream;
    std::unique_ptr<SampleOrder> order;
  };
  std::vector<Dataset> sets_;
  std::unique_ptr<BlendOrder> blend_;  // null: one dataset
  int32_t eod_ = -1;
  int64_t seq_len_, samples_per_step_, local_count_;
  int dp_rank_;
  int prefetch_;
  int64_t cursor_ = 0;  // next step handed out by next_step()

  // Prefetch state, guarded by mu_: the thread fills ready_ with steps from produce_cursor_ on.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Step> ready_;
  int64_t produce_cursor_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace lct
