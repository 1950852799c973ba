#include "data/tokenizer_bpe.h"

#include <algorithm>

#include "core/error.h"
#include "data/tokenizer_bytelevel.h"
#include "data/unicode.h"

namespace lct {
namespace {

// Pieces longer than this are not cached (long whitespace or symbol runs rarely repeat).
constexpr size_t kMaxCachedPiece = 64;
constexpr size_t kMaxCacheEntries = 1 << 18;

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

// A vocabulary string -> the bytes it stands for. A string with a character outside the byte-level
// alphabet stands for its own UTF-8 bytes, as in HF's ByteLevel decoder.
std::string vocab_bytes(const std::string& text, bool* byte_level) {
  std::string out;
  std::vector<CodeUnit> units;
  utf8_decode(text, &units);
  for (const CodeUnit& u : units) {
    int b = unicode_to_byte(u.cp);
    if (b < 0) {
      *byte_level = false;
      return text;
    }
    out.push_back(static_cast<char>(b));
  }
  *byte_level = true;
  return out;
}

}  // namespace

struct BpeTokenizer::Workspace {
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // neighbours in the word, -1 at the ends
    int32_t len;         // bytes covered; 0 once merged into its left neighbour
  };
  struct Candidate {  // a merge that may apply at pos; stale once pos or its neighbour changed
    int32_t rank, pos, new_id;
    // std::push_heap keeps the largest on top: "largest" is the lowest rank, then the leftmost pos.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  struct CacheEntry {
    uint32_t begin, count;  // into cache_ids
  };

  std::vector<TextSegment> segments, plain;
  std::vector<CodeUnit> units;
  std::vector<std::vector<std::string_view>> pieces;  // one list per pre-tokenizer level
  std::string prefixed;
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::unordered_map<std::string_view, CacheEntry> cache;  // keys point into the text being encoded
  std::vector<int32_t> cache_ids;
};

BpeTokenizer::BpeTokenizer(const std::string& path) : BpeTokenizer(read_tokenizer_json(path)) {}

BpeTokenizer::BpeTokenizer(const BpeSpec& spec)
    : path_(spec.path),
      pretok_(spec.pretok),
      ignore_merges_(spec.ignore_merges),
      fuse_unk_(spec.fuse_unk),
      has_template_(spec.has_template),
      template_prefix_(spec.template_prefix),
      template_suffix_(spec.template_suffix) {
  auto fail = [&](const std::string& what) { throw InputError(str("tokenizer '", path_, "': ", what)); };

  int32_t max_id = -1;
  for (const auto& [text, id] : spec.vocab) max_id = std::max(max_id, id);
  for (const auto& a : spec.added) max_id = std::max(max_id, a.id);
  if (max_id < 0) fail("model.vocab is empty");
  // Ids index a table: one far beyond the number of entries (a typo, 2147483647) would ask for
  // gigabytes. Real vocabularies leave few holes (Llama-3: none).
  const int64_t entries = int64_t(spec.vocab.size() + spec.added.size());
  if (int64_t(max_id) >= 4 * entries + 1024) {
    for (const auto& [text, id] : spec.vocab)
      if (id == max_id) fail(str("model.vocab[\"", text, "\"] = ", id, " is far beyond the ", entries, " entries; fix the id"));
    fail(str("added_tokens: id ", max_id, " is far beyond the ", entries, " entries; fix the id"));
  }
  tokens_.resize(size_t(max_id) + 1);

  std::unordered_map<std::string, int32_t> vocab;  // the model's own vocabulary, without added tokens
  vocab.reserve(spec.vocab.size());
  for (const auto& [text, id] : spec.vocab) {
    TokenInfo& t = tokens_[size_t(id)];
    if (t.present)
      fail(str("model.vocab: id ", id, " is given to both \"", t.text, "\" and \"", text, "\""));
    t.text = text;
    t.present = true;
    t.bytes = vocab_bytes(text, &t.byte_level);
    vocab[text] = id;
  }
  text_to_id_ = vocab;

  for (const AddedTokenSpec& a : spec.added) {
    TokenInfo& t = tokens_[size_t(a.id)];
    t.text = a.content;
    t.bytes = a.content;
    t.added = true;
    t.present = true;
    text_to_id_[a.content] = a.id;
    (a.normalized ? normalized_added_ : plain_added_).add(a.content, a.id, a.special);
  }

  if (ignore_merges_) {
    for (const auto& [text, id] : spec.vocab) {
      const TokenInfo& t = tokens_[size_t(id)];
      if (t.byte_level && !t.added) bytes_to_id_.emplace(std::string_view(t.bytes), id);
    }
  }

  if (!spec.unk_token.empty()) {
    auto it = vocab.find(spec.unk_token);
    if (it == vocab.end()) fail(str("model.unk_token \"", spec.unk_token, "\" is not in model.vocab"));
    unk_id_ = it->second;
  }
  int missing = 0, first_missing = -1;
  for (int b = 0; b < 256; ++b) {
    std::string s;
    utf8_append(byte_to_unicode(uint8_t(b)), &s);
    auto it = vocab.find(s);
    byte_id_[b] = it == vocab.end() ? -1 : it->second;
    if (byte_id_[b] < 0 && missing++ == 0) first_missing = b;
  }
  if (missing > 0 && unk_id_ < 0)
    fail(str("model.vocab lacks the byte-level token of ", missing, " byte(s) (first: 0x", std::hex,
             first_missing, std::dec, ") and there is no unk_token, so some text cannot be encoded; "
             "is this a byte-level BPE?"));

  merges_.reserve(spec.merges.size());
  for (size_t r = 0; r < spec.merges.size(); ++r) {
    const auto& [left, right] = spec.merges[r];
    auto a = vocab.find(left), b = vocab.find(right), ab = vocab.find(left + right);
    for (auto [it, s] : {std::make_pair(a, &left), std::make_pair(b, &right)}) {
      if (it == vocab.end()) fail(str("model.merges[", r, "]: \"", *s, "\" is not in model.vocab"));
    }
    if (ab == vocab.end()) fail(str("model.merges[", r, "]: the merged token \"", left + right,
                                    "\" is not in model.vocab"));
    merges_[pair_key(a->second, b->second)] = Merge{int32_t(r), ab->second};  // a later duplicate wins, as in HF
  }

  // BOS: the template's first token, else a conventional name; EOS: a conventional name.
  auto added_id = [&](const char* name) {
    int32_t id = token_id(name);
    return id >= 0 && tokens_[size_t(id)].added ? id : -1;
  };
  if (has_template_ && !template_prefix_.empty()) bos_id_ = template_prefix_[0];
  for (const char* n : {"<|begin_of_text|>", "<s>"}) {
    if (bos_id_ < 0) bos_id_ = added_id(n);
  }
  for (const char* n : {"<|end_of_text|>", "<|endoftext|>", "</s>"}) {
    if (eos_id_ < 0) eos_id_ = added_id(n);
  }
  for (const auto* ids : {&template_prefix_, &template_suffix_}) {
    for (int32_t id : *ids) {
      if (size_t(id) >= tokens_.size() || !tokens_[size_t(id)].present)
        fail(str("post_processor: template token id ", id, " is not in the vocabulary"));
    }
  }
}

const BpeTokenizer::TokenInfo& BpeTokenizer::info(int32_t id, size_t pos) const {
  if (id < 0 || size_t(id) >= tokens_.size() || !tokens_[size_t(id)].present)
    throw InputError(str("tokenizer '", path_, "': token id ", id, " at position ", pos,
                         " is not in the vocabulary (size ", tokens_.size(), ")"));
  return tokens_[size_t(id)];
}

int32_t BpeTokenizer::token_id(const std::string& token) const {
  auto it = text_to_id_.find(token);
  return it == text_to_id_.end() ? -1 : it->second;
}

std::string BpeTokenizer::token_bytes(int32_t id) const { return info(id, 0).bytes; }

std::vector<int32_t> BpeTokenizer::encode(const std::string& text, bool parse_special) const {
  Workspace ws;
  ws.pieces.resize(pretok_.splits.size() + 1);
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 1);
  // HF's two passes: tokens matched in the raw text, then those matched after normalization (no
  // normalizer here, so the same text) inside what the first pass left.
  plain_added_.split(text, parse_special, &ws.segments);
  for (const TextSegment& seg : ws.segments) {
    if (seg.id >= 0) {
      out.push_back(seg.id);
      continue;
    }
    ws.plain.clear();
    normalized_added_.split(seg.text, parse_special, &ws.plain);
    for (const TextSegment& s : ws.plain) {
      if (s.id >= 0)
        out.push_back(s.id);
      else
        encode_span(s.text, &ws, &out);
    }
  }
  return out;
}

std::vector<int32_t> BpeTokenizer::encode_with_bos(const std::string& text, bool parse_special) const {
  std::vector<int32_t> body = encode(text, parse_special);
  if (!has_template_) return body;
  std::vector<int32_t> out = template_prefix_;
  out.insert(out.end(), body.begin(), body.end());
  out.insert(out.end(), template_suffix_.begin(), template_suffix_.end());
  return out;
}

// Runs the pre-tokenizer steps over a span of plain text and encodes each resulting piece.
void BpeTokenizer::encode_span(std::string_view text, Workspace* ws, std::vector<int32_t>* out) const {
  // Level k < number of Split steps: split and recurse; the last level is the ByteLevel step.
  struct Run {
    const BpeTokenizer& tok;
    Workspace* ws;
    std::vector<int32_t>* out;
    void level(std::string_view t, size_t k) {
      const PreTokenizerSpec& p = tok.pretok_;
      std::vector<std::string_view>& pieces = ws->pieces[k];
      if (k < p.splits.size()) {
        pieces.clear();
        split_by_pattern(p.splits[k], t, &ws->units, &pieces);
        for (size_t i = 0; i < pieces.size(); ++i) level(pieces[i], k + 1);
        return;
      }
      if (p.add_prefix_space && (t.empty() || t[0] != ' ')) {
        ws->prefixed.assign(1, ' ');
        ws->prefixed.append(t);
        std::string_view pt = ws->prefixed;
        if (!p.use_regex) {
          tok.encode_piece(pt, ws, out, /*cacheable=*/false);
          return;
        }
        pieces.clear();
        split_by_pattern(SplitPattern::kGpt2, pt, &ws->units, &pieces);
        // Only the first piece holds the added space; the others are also pieces of t, and a view
        // into t may key the cache.
        for (std::string_view piece : pieces) {
          size_t at = size_t(piece.data() - pt.data());
          if (at == 0)
            tok.encode_piece(piece, ws, out, false);
          else
            tok.encode_piece(t.substr(at - 1, piece.size()), ws, out, true);
        }
        return;
      }
      if (!p.use_regex) {
        tok.encode_piece(t, ws, out, /*cacheable=*/true);
        return;
      }
      pieces.clear();
      split_by_pattern(SplitPattern::kGpt2, t, &ws->units, &pieces);
      for (std::string_view piece : pieces) tok.encode_piece(piece, ws, out, true);
    }
  };
  if (!text.empty()) Run{*this, ws, out}.level(text, 0);
}

void BpeTokenizer::encode_piece(std::string_view piece, Workspace* ws, std::vector<int32_t>* out,
                                bool cacheable) const {
  cacheable = cacheable && piece.size() <= kMaxCachedPiece;
  if (cacheable) {
    auto it = ws->cache.find(piece);
    if (it != ws->cache.end()) {
      auto first = ws->cache_ids.begin() + it->second.begin;
      out->insert(out->end(), first, first + it->second.count);
      return;
    }
  }
  size_t before = out->size();
  bpe(piece, ws, out);
  if (cacheable && ws->cache.size() < kMaxCacheEntries) {
    Workspace::CacheEntry e{uint32_t(ws->cache_ids.size()), uint32_t(out->size() - before)};
    ws->cache_ids.insert(ws->cache_ids.end(), out->begin() + long(before), out->end());
    ws->cache.emplace(piece, e);
  }
}

void BpeTokenizer::bpe(std::string_view piece, Workspace* ws, std::vector<int32_t>* out) const {
  if (ignore_merges_) {
    auto it = bytes_to_id_.find(piece);
    if (it != bytes_to_id_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  // One symbol per byte; bytes missing from the vocabulary become unk (fused if fuse_unk).
  auto& sym = ws->symbols;
  sym.clear();
  bool last_unk = false;
  for (char c : piece) {
    int32_t id = byte_id_[static_cast<unsigned char>(c)];
    bool unk = id < 0;
    if (unk && fuse_unk_ && last_unk) {
      sym.back().len += 1;
      continue;
    }
    last_unk = unk;
    if (unk) id = unk_id_;
    int32_t n = int32_t(sym.size());
    sym.push_back({id, n - 1, n + 1, 1});
  }
  if (sym.empty()) return;
  sym.back().next = -1;

  auto& heap = ws->heap;
  heap.clear();
  auto find_merge = [&](int32_t a, int32_t b) -> const Merge* {
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  auto push = [&](int32_t pos) {
    int32_t next = sym[size_t(pos)].next;
    if (next < 0) return;
    if (const Merge* m = find_merge(sym[size_t(pos)].id, sym[size_t(next)].id)) {
      heap.push_back({m->rank, pos, m->new_id});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (int32_t i = 0; i + 1 < int32_t(sym.size()); ++i) push(i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    Workspace::Candidate top = heap.back();
    heap.pop_back();
    Workspace::Symbol& left = sym[size_t(top.pos)];
    if (left.len == 0 || left.next < 0) continue;  // merged away, or now the last symbol
    Workspace::Symbol& right = sym[size_t(left.next)];
    const Merge* m = find_merge(left.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;  // stale: a neighbour changed
    left.id = top.new_id;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (left.next >= 0) sym[size_t(left.next)].prev = top.pos;
    if (left.prev >= 0) push(left.prev);
    push(top.pos);
  }
  for (const Workspace::Symbol& s : sym) {
    if (s.len > 0) out->push_back(s.id);
  }
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  // As HF: the bytes of a run of model tokens are decoded together, invalid UTF-8 becoming U+FFFD;
  // added tokens come out as their text.
  std::string out, run;
  for (size_t i = 0; i < ids.size(); ++i) {
    const TokenInfo& t = info(ids[i], i);
    if (t.added) {
      out += utf8_lossy(run);
      run.clear();
      out += t.text;
    } else {
      run += t.bytes;
    }
  }
  out += utf8_lossy(run);
  return out;
}

}  // namespace lct
