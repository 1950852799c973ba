#include "data/loader.h"

#include "core/error.h"
#include "core/log.h"
#include "data/data_files.h"

#include <cstdio>
#include <tuple>

namespace lct {

namespace {
std::string weight_text(double w) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", w);
  return b;
}
}  // namespace

DataLoader::DataLoader(const DataOptions& opt, int64_t seq_len, int64_t samples_per_step, int dp_rank, int dp_size)
    : seq_len_(seq_len), samples_per_step_(samples_per_step), dp_rank_(dp_rank), prefetch_(opt.prefetch) {
  if (seq_len < 1) throw InputError(str("[data] seq_len = ", seq_len, ": must be at least 1"));
  if (samples_per_step < 1) throw InputError(str("[data] samples per step = ", samples_per_step, ": must be at least 1"));
  LCT_CHECK(dp_size >= 1 && dp_rank >= 0 && dp_rank < dp_size, "dp rank ", dp_rank, " of ", dp_size);
  if (samples_per_step % dp_size != 0)
    throw InputError(str("the global batch of ", samples_per_step, " samples does not split over dp = ", dp_size,
                         " replicas; make micro_batch x grad_accum x dp a multiple of dp"));
  if (opt.prefetch < 0) throw InputError(str("[data] prefetch = ", opt.prefetch, ": must be >= 0"));
  if (opt.vocab_size < 0) throw InputError(str("[data] vocab_size = ", opt.vocab_size, ": must be >= 0"));
  if (opt.eod_token < -1) throw InputError(str("[data] eod_token = ", opt.eod_token, ": use -1 (from the files) or an id"));
  local_count_ = samples_per_step / dp_size;

  const std::vector<BlendPart> parts = parse_blend(opt.train);
  std::vector<std::vector<std::unique_ptr<TokenFile>>> files(parts.size());
  int32_t file_eod = -1;
  std::string eod_from;
  for (size_t d = 0; d < parts.size(); ++d)
    for (const std::string& path : expand_data_paths(parts[d].paths, opt.format)) {
      files[d].push_back(open_token_file(path, opt.format));
      const TokenFileInfo& info = files[d].back()->info();
      if (opt.vocab_size > 0 && info.vocab_size > opt.vocab_size)
        throw InputError(str("data file ", info.path, ": tokenized for a vocabulary of ", info.vocab_size,
                             " (attribute vocab_size) but the model's vocab_size is ", opt.vocab_size,
                             "; raise [model] vocab_size or retokenize"));
      if (info.eod_token >= 0) {
        if (file_eod >= 0 && info.eod_token != file_eod && opt.eod_token < 0)
          throw InputError(str("data file ", info.path, ": eod_token ", info.eod_token, " differs from ", file_eod,
                               " in ", eod_from, "; set [data] eod_token explicitly or use files of one tokenizer"));
        file_eod = info.eod_token;
        eod_from = info.path;
      }
    }
  const int32_t eod = opt.eod_token >= 0 ? opt.eod_token : file_eod;
  if (opt.vocab_size > 0 && eod >= opt.vocab_size)
    throw InputError(str("[data] eod_token ", eod, eod_from.empty() || opt.eod_token >= 0 ? "" : " (from " + eod_from + ")",
                         " is >= vocab_size ", opt.vocab_size));
  std::vector<double> weights;
  for (size_t d = 0; d < parts.size(); ++d) {
    Dataset ds;
    ds.stream = std::make_unique<TokenStream>(std::move(files[d]), opt.eod_token, opt.vocab_size);
    const std::string which = parts.size() > 1 ? str(" (blend part ", d + 1, ": ", weight_text(parts[d].weight), ")") : "";
    if (ds.stream->size() < seq_len + 1)
      throw InputError(str(opt.key, which, ": the data holds ", ds.stream->size(), " tokens",
                           eod >= 0 ? " (with end-of-document tokens)" : "", "; one sample needs seq_len + 1 = ",
                           seq_len + 1, ". Add data or shorten seq_len"));
    // Dataset 0 keeps the seed alone: a single dataset visits its samples exactly as before blends.
    ds.order = std::make_unique<SampleOrder>((ds.stream->size() - 1) / seq_len,
                                             opt.seed + uint64_t(d) * 0x9E3779B97F4A7C15ull, opt.shuffle);
    weights.push_back(parts[d].weight);
    sets_.push_back(std::move(ds));
  }
  eod_ = eod;  // the token every part agreed on above (part 1 may have none)
  if (sets_.size() > 1) blend_ = std::make_unique<BlendOrder>(weights);
  std::string blend_text;
  for (size_t d = 0; d < sets_.size() && sets_.size() > 1; ++d)
    blend_text += str(d ? ", " : "; blend ", weight_text(parts[d].weight), " x ", sets_[d].stream->num_files(),
                      " file(s) (", sets_[d].order->samples_per_epoch(), " samples)");
  int64_t nfiles = 0;
  for (const Dataset& ds : sets_) nfiles += int64_t(ds.stream->num_files());
  info("data: ", nfiles, " file(s), ", total_tokens(), " tokens, ", samples_per_epoch(), " samples of ", seq_len,
       "+1 per epoch", eod >= 0 ? str(", eod ", eod) : std::string(), has_loss_mask() ? ", loss mask" : "", blend_text);
  start_prefetch();
}

DataLoader::~DataLoader() { stop_prefetch(); }

int64_t DataLoader::samples_per_epoch() const {
  int64_t n = 0;
  for (const Dataset& ds : sets_) n += ds.order->samples_per_epoch();
  return n;
}
int64_t DataLoader::total_tokens() const {
  int64_t n = 0;
  for (const Dataset& ds : sets_) n += ds.stream->size();
  return n;
}
int32_t DataLoader::eod_token() const { return eod_; }
bool DataLoader::has_loss_mask() const {
  for (const Dataset& ds : sets_)
    if (ds.stream->has_loss_mask()) return true;
  return false;
}
int64_t DataLoader::cursor() const { return cursor_; }

Sample DataLoader::read_sample(int64_t g) const {
  Sample s;
  int64_t j = g;
  if (blend_) std::tie(s.dataset, j) = blend_->at(g);
  const Dataset& ds = sets_[size_t(s.dataset)];
  const int64_t id = ds.order->sample_at(j);
  s.tokens.resize(size_t(seq_len_ + 1));
  // In a blend where some datasets carry a loss mask, the others' samples get an all-ones mask.
  if (has_loss_mask()) s.loss_mask.assign(size_t(seq_len_ + 1), 1);
  ds.stream->read(id * seq_len_, seq_len_ + 1, s.tokens.data(),
                  ds.stream->has_loss_mask() ? s.loss_mask.data() : nullptr);
  return s;
}

DataLoader::Step DataLoader::make_step(int64_t cursor) const {
  Step step;
  step.cursor = cursor;
  try {
    step.samples.reserve(size_t(local_count_));
    const int64_t first = cursor + int64_t(dp_rank_) * local_count_;
    for (int64_t j = 0; j < local_count_; ++j) step.samples.push_back(read_sample(first + j));
  } catch (...) {
    step.samples.clear();
    step.error = std::current_exception();
  }
  return step;
}

std::vector<Sample> DataLoader::next_step() {
  if (prefetch_ == 0) {
    Step step = make_step(cursor_);
    if (step.error) std::rethrow_exception(step.error);
    cursor_ += samples_per_step_;
    return std::move(step.samples);
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !ready_.empty(); });
  Step& front = ready_.front();
  LCT_CHECK(front.cursor == cursor_, "prefetched step at ", front.cursor, " but the cursor is ", cursor_);
  // A failed step stays at the front: every later call reports the same error until a seek().
  if (front.error) std::rethrow_exception(front.error);
  std::vector<Sample> samples = std::move(front.samples);
  ready_.pop_front();
  cursor_ += samples_per_step_;
  cv_.notify_all();
  return samples;
}

void DataLoader::seek(int64_t cursor) {
  if (cursor < 0) throw InputError(str("data cursor ", cursor, " is negative; the saved training state is corrupt"));
  stop_prefetch();
  cursor_ = cursor;
  start_prefetch();
}

void DataLoader::start_prefetch() {
  if (prefetch_ == 0) return;
  ready_.clear();
  produce_cursor_ = cursor_;
  stop_ = false;
  worker_ = std::thread([this] { prefetch_loop(); });
}

void DataLoader::stop_prefetch() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
  ready_.clear();
}

void DataLoader::prefetch_loop() {
  for (;;) {
    int64_t c = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || int(ready_.size()) < prefetch_; });
      if (stop_) return;
      c = produce_cursor_;
      produce_cursor_ += samples_per_step_;
    }
    Step step = make_step(c);  // the slow part, outside the lock
    const bool failed = bool(step.error);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      ready_.push_back(std::move(step));
    }
    cv_.notify_all();
    if (failed) return;  // the consumer rethrows it; nothing after a bad step is prepared
  }
}

}  // namespace lct
