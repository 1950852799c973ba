// lcdata: data preparation. Tokenize text into a token file, print what a token file holds, convert
// between the formats the trainer reads. Usage and formats: docs/data.md.
#include <hdf5.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/text_file.h"
#include "data/chat_template.h"
#include "data/prepare.h"
#include "data/synth.h"
#include "data/tokenizer.h"
#include "eval/ruler_train_data.h"

namespace {

const char* kUsage =
    "usage:\n"
    "  lcdata text --tokenizer bytes|PATH/tokenizer.json --out FILE [--format hdf5|llmc|megatron]\n"
    "              [--bos] [--no-eod] [--parse-special] INPUT...\n"
    "      each INPUT file is one document ('-' reads stdin); documents end with the tokenizer's\n"
    "      end-of-text token (hdf5: as the eod_token attribute; llmc/megatron: written after each one)\n"
    "  lcdata chat --tokenizer PATH/tokenizer.json --out FILE.h5|FILE.jsonl [--template llama3] INPUT.jsonl...\n"
    "      chat conversations, one {\"messages\": [{\"role\", \"content\"}, ...]} per line, in the Llama-3\n"
    "      format; the loss mask trains on the assistant turns only (hdf5; train with data.bos_token;\n"
    "      .jsonl writes the tokens and masks as `lcdata tokens` reads them)\n"
    "  lcdata tokens --out FILE.h5 --vocab-size N [--eod ID] INPUT.jsonl...\n"
    "      pretokenized documents, one {\"tokens\": [...], \"loss_mask\": [...]} per line (the mask optional):\n"
    "      what tools/chat_template.py writes for other models' chat templates\n"
    "  lcdata info FILE [--format auto|hdf5|llmc|megatron]\n"
    "      format, counts, vocabulary, id range, loss mask and SHA-256 checksums of a token file\n"
    "  lcdata convert IN OUT [--format hdf5|llmc|megatron] [--drop-loss-mask]\n"
    "      rewrites a token file in another format (default: by OUT's extension, else hdf5)\n"
    "  lcdata synth --task passkey|niah|kv --length N --docs N --out FILE.h5 [--seed S]\n"
    "              [--key-len K] [--value-len V] [--needles N] [--min-needles M] [--queries Q]\n"
    "              [--depth PERCENT|random] [--no-needle] [--value-classes]\n"
    "              [--filler markov|phrases|pairs|random] [--filler-loss F]\n"
    "              [--text FILE --tokenizer bytes|PATH/tokenizer.json]\n"
    "      synthetic retrieval documents of exactly N tokens with a loss mask on the answers\n"
    "      (hdf5; the layout and the task definitions are in docs/longctx.md)\n"
    "  lcdata ruler --task NAME --unit N --docs N --out FILE.h5 [--min-length M] [--seed S]\n"
    "              [--tokenizer bytes|PATH/tokenizer.json] [--haystack FILE] [--prompt-loss F]\n"
    "              [--cwe-freq CW,UCW]\n"
    "  lcdata ruler --task copy|recall --unit N --docs N --out FILE.h5 [--max-gap G] [--seed S]\n"
    "              [--tokenizer bytes|PATH/tokenizer.json]\n"
    "      training data for a RULER task of lctrain --eval (niah_single_1 ... fwe): its prompts, each\n"
    "      followed by the answer and the end-of-text token (loss mask 1 on those), packed into units of\n"
    "      exactly N tokens (= train.seq_len) holding whole documents of M to N tokens (default M: the\n"
    "      shortest the task's template allows);\n"
    "      --docs counts units; --haystack: eval.haystack's text; --prompt-loss:\n"
    "      the fraction of prompt tokens trained on too; --cwe-freq: eval.cwe_freq_cw,eval.cwe_freq_ucw\n"
    "      (docs/longctx.md, section 2b); --task copy: copy practice, not a RULER task: values in the\n"
    "      tasks' formats, G tokens of noise, then the values again (loss mask on the copy);\n"
    "      --task recall: recall practice, not a RULER task: multikey needles (up to G tokens of noise\n"
    "      before each but the first), then 1 to 8 of their keys asked in the tasks' words (loss mask\n"
    "      on the values)\n"
    "Formats: docs/data.md. Exit codes: 0 ok, 2 bad input, 1 anything else.\n";

// Splits argv into options (--name [value]) and positional arguments.
struct Args {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> options;

  bool flag(const std::string& name) const {
    for (const auto& o : options)
      if (o.first == name) return true;
    return false;
  }
  std::string value(const std::string& name, const std::string& fallback = "") const {
    for (const auto& o : options)
      if (o.first == name) return o.second;
    return fallback;
  }
};

Args parse_args(int argc, char** argv, const std::vector<std::string>& with_value,
                const std::vector<std::string>& flags) {
  Args a;
  for (int i = 2; i < argc; ++i) {
    const std::string s = argv[i];
    if (s.size() > 2 && s.compare(0, 2, "--") == 0) {
      std::string name = s, value;
      const size_t eq = s.find('=');
      if (eq != std::string::npos) name = s.substr(0, eq), value = s.substr(eq + 1);
      bool takes_value = false, known = false;
      for (const auto& w : with_value) takes_value = takes_value || w == name;
      for (const auto& f : flags) known = known || f == name;
      if (!takes_value && !known) throw lct::InputError(lct::str("unknown option ", name, "\n", kUsage));
      if (!takes_value && eq != std::string::npos)
        throw lct::InputError(lct::str("option ", name, " is a flag and takes no value ('", s, "'); give ", name,
                                       " alone, or leave it out"));
      if (takes_value && eq == std::string::npos) {
        if (i + 1 >= argc) throw lct::InputError(lct::str("option ", name, " needs a value"));
        value = argv[++i];
      }
      if (takes_value && value.empty()) throw lct::InputError(lct::str("option ", name, " has an empty value"));
      for (const auto& o : a.options)
        if (o.first == name) throw lct::InputError(lct::str("option ", name, " is given twice; give it once"));
      a.options.emplace_back(name, value);
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

std::string read_text(const std::string& path) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  return lct::read_text_input(path, "input", /*allow_empty=*/true);
}

// The outputs that hold a loss mask are hdf5, named so (output_format's default for an unknown
// suffix would write hdf5 into r.txt).
bool is_hdf5_name(const std::string& out) {
  auto ends = [&](const std::string& suf) { return out.size() > suf.size() && out.compare(out.size() - suf.size(), suf.size(), suf) == 0; };
  return ends(".h5") || ends(".hdf5");
}

// The output's folder is created when missing (`--out data/tiny.h5` in a fresh clone).
void make_parent_dir(const std::string& out) {
  const std::filesystem::path dir = std::filesystem::path(out).parent_path();
  std::error_code ec;
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) std::filesystem::create_directories(dir, ec);
  if (ec) throw lct::InputError(lct::str("--out ", out, ": cannot create the folder ", dir.string(), ": ", ec.message()));
}

int cmd_text(int argc, char** argv) {
  const Args a = parse_args(argc, argv, {"--tokenizer", "--out", "--format"}, {"--bos", "--no-eod", "--parse-special"});
  const std::string spec = a.value("--tokenizer"), out = a.value("--out");
  if (spec.empty()) throw lct::InputError("lcdata text: --tokenizer is required (bytes or a tokenizer.json path)");
  if (out.empty()) throw lct::InputError("lcdata text: --out is required");
  if (a.positional.empty()) throw lct::InputError("lcdata text: no INPUT files (use - for stdin)");
  const lct::TokenFormat format = lct::output_format(out, a.value("--format"));
  make_parent_dir(out);
  std::unique_ptr<lct::Tokenizer> tok = lct::make_tokenizer(spec);
  const bool bos = a.flag("--bos"), parse_special = a.flag("--parse-special");
  if (bos && tok->bos_id() < 0) throw lct::InputError(lct::str("--bos: tokenizer ", spec, " has no begin-of-text token"));
  std::vector<lct::Document> docs;
  int64_t total = 0;
  for (const std::string& in : a.positional) {
    lct::Document d;
    d.tokens = bos ? tok->encode_with_bos(read_text(in), parse_special) : tok->encode(read_text(in), parse_special);
    total += int64_t(d.tokens.size());
    docs.push_back(std::move(d));
  }
  lct::WriterPlan plan;
  plan.vocab_size = tok->vocab_size();
  plan.tokenizer = tok->name();
  plan.eod_token = a.flag("--no-eod") ? -1 : tok->eos_id();
  plan.dtype = {0, false};  // by vocabulary
  lct::write_documents(out, format, docs, plan);
  std::printf("wrote %s (%s): %zu documents, %lld tokens, vocab_size %lld, eod %d\n", out.c_str(),
              lct::format_name(format), docs.size(), (long long)total, (long long)plan.vocab_size, plan.eod_token);
  return 0;
}

long long synth_int(const Args& a, const std::string& name, long long fallback, long long lo, long long hi);

// Each non-empty line of the inputs, with its "file:line" for error messages.
template <class Fn>
void for_each_line(const std::vector<std::string>& inputs, Fn fn) {
  for (const std::string& in : inputs) {
    std::istringstream text(read_text(in));
    std::string line;
    for (int n = 1; std::getline(text, line); ++n)
      if (line.find_first_not_of(" \t\r") != std::string::npos) fn(line, lct::str(in, ":", n));
  }
}

void write_masked(const std::string& out, const std::vector<lct::Document>& docs, lct::WriterPlan plan) {
  if (docs.empty()) throw lct::InputError("no documents in the inputs");
  plan.loss_mask = true;
  plan.dtype = {0, false};
  lct::write_documents(out, lct::TokenFormat::Hdf5, docs, plan);
}

int cmd_chat(int argc, char** argv) {
  const Args a = parse_args(argc, argv, {"--tokenizer", "--out", "--template"}, {});
  const std::string spec = a.value("--tokenizer"), out = a.value("--out");
  if (spec.empty()) throw lct::InputError("lcdata chat: --tokenizer PATH/tokenizer.json is required");
  if (out.empty()) throw lct::InputError("lcdata chat: --out FILE.h5 is required");
  if (a.positional.empty()) throw lct::InputError("lcdata chat: no INPUT.jsonl files (use - for stdin)");
  const bool jsonl = out.size() > 6 && out.compare(out.size() - 6, 6, ".jsonl") == 0;
  if (!jsonl && !is_hdf5_name(out))
    throw lct::InputError(lct::str("lcdata chat: ", out, ": chat data has a loss mask, which only hdf5 stores; name the "
                                   "output .h5 (or .jsonl)"));
  make_parent_dir(out);
  std::unique_ptr<lct::Tokenizer> tok = lct::make_tokenizer(spec);
  std::unique_ptr<lct::ChatTemplate> tmpl = lct::make_chat_template(a.value("--template", "llama3"), *tok);
  std::vector<lct::Document> docs;
  int64_t total = 0, trained = 0;
  for_each_line(a.positional, [&](const std::string& line, const std::string& where) {
    const lct::ChatTokens c = tmpl->render(lct::parse_chat_json(line, where), false);
    docs.push_back({c.tokens, c.loss_mask});
    total += int64_t(c.tokens.size());
    for (uint8_t m : c.loss_mask) trained += m;
  });
  if (jsonl) {
    std::ofstream f(out);
    for (const lct::Document& d : docs)
      f << nlohmann::json{{"tokens", d.tokens}, {"loss_mask", d.loss_mask}}.dump() << "\n";
    if (!f) throw lct::Error(lct::kExitFailure, lct::str("cannot write ", out));
    std::printf("wrote %s: %zu conversations\n", out.c_str(), docs.size());
    return 0;
  }
  lct::WriterPlan plan;
  plan.vocab_size = tok->vocab_size();
  plan.tokenizer = tok->name();
  plan.eod_token = -1;  // each conversation begins with its BOS: train with data.bos_token
  write_masked(out, docs, plan);
  std::printf("wrote %s (hdf5): %zu conversations, %lld tokens, %lld with loss mask 1 (assistant turns), template %s, "
              "vocab_size %lld; documents begin with bos %d (data.bos_token = %d)\n",
              out.c_str(), docs.size(), (long long)total, (long long)trained, tmpl->name().c_str(),
              (long long)plan.vocab_size, tmpl->bos_id(), tmpl->bos_id());
  return 0;
}

int cmd_tokens(int argc, char** argv) {
  const Args a = parse_args(argc, argv, {"--out", "--vocab-size", "--eod"}, {});
  const std::string out = a.value("--out");
  if (out.empty()) throw lct::InputError("lcdata tokens: --out FILE.h5 is required");
  if (a.positional.empty()) throw lct::InputError("lcdata tokens: no INPUT.jsonl files (use - for stdin)");
  const long long vocab = synth_int(a, "--vocab-size", 0, 1, 1ll << 31);
  if (vocab == 0) throw lct::InputError("lcdata tokens: --vocab-size N is required");
  if (!is_hdf5_name(out))
    throw lct::InputError(lct::str("lcdata tokens: ", out, ": name the output .h5 (it stores the loss mask)"));
  make_parent_dir(out);
  std::vector<lct::Document> docs;
  int64_t empty = 0;  // documents without tokens: skipped, and said so
  for_each_line(a.positional, [&](const std::string& line, const std::string& where) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      throw lct::InputError(lct::str(where, ": not a JSON object: ", e.what()));
    }
    if (!j.is_object() || !j.contains("tokens") || !j["tokens"].is_array())
      throw lct::InputError(lct::str(where, ": expected {\"tokens\": [...], \"loss_mask\": [...]}"));
    lct::Document d;
    for (const auto& t : j["tokens"]) {
      if (!t.is_number_integer() || t.get<long long>() < 0 || t.get<long long>() >= vocab)
        throw lct::InputError(lct::str(where, ": token ", t.dump(), " is not an id in [0, ", vocab, ") (--vocab-size)"));
      d.tokens.push_back(t.get<int32_t>());
    }
    if (j.contains("loss_mask")) {
      if (!j["loss_mask"].is_array() || j["loss_mask"].size() != d.tokens.size())
        throw lct::InputError(lct::str(where, ": loss_mask has ", j["loss_mask"].is_array() ? j["loss_mask"].size() : 0,
                                       " entries for ", d.tokens.size(), " tokens; give one 0 or 1 per token"));
      for (const auto& m : j["loss_mask"]) {
        // 0/1 (or false/true): anything else is a mistake we must not guess at.
        if (m.is_boolean()) d.loss_mask.push_back(uint8_t(m.get<bool>()));
        else if (m.is_number_integer() && (m.get<long long>() == 0 || m.get<long long>() == 1))
          d.loss_mask.push_back(uint8_t(m.get<long long>()));
        else
          throw lct::InputError(lct::str(where, ": loss_mask entry ", m.dump(), " is not 0 or 1 (or false/true)"));
      }
    } else {
      d.loss_mask.assign(d.tokens.size(), 1);
    }
    if (d.tokens.empty()) ++empty;
    else docs.push_back(std::move(d));
  });
  lct::WriterPlan plan;
  plan.vocab_size = vocab;
  plan.tokenizer = "pretokenized";
  plan.eod_token = int32_t(synth_int(a, "--eod", -1, -1, vocab - 1));
  write_masked(out, docs, plan);
  std::printf("wrote %s (hdf5): %zu documents, vocab_size %lld, eod %d%s\n", out.c_str(), docs.size(), vocab, plan.eod_token,
              empty ? lct::str("; skipped ", empty, " document(s) without tokens").c_str() : "");
  return 0;
}

int cmd_info(int argc, char** argv) {
  const Args a = parse_args(argc, argv, {"--format"}, {});
  if (a.positional.size() != 1) throw lct::InputError(lct::str("lcdata info takes one FILE\n", kUsage));
  std::fputs(lct::format_summary(lct::summarize_token_file(a.positional[0], a.value("--format", "auto"))).c_str(), stdout);
  return 0;
}

int cmd_convert(int argc, char** argv) {
  const Args a = parse_args(argc, argv, {"--format"}, {"--drop-loss-mask"});
  if (a.positional.size() != 2) throw lct::InputError(lct::str("lcdata convert takes IN and OUT\n", kUsage));
  lct::ConvertOptions opt;
  opt.drop_loss_mask = a.flag("--drop-loss-mask");
  const lct::TokenFormat format = lct::output_format(a.positional[1], a.value("--format"));
  lct::convert_token_file(a.positional[0], a.positional[1], format, opt);
  std::printf("wrote %s (%s)\n", a.positional[1].c_str(), lct::format_name(format));
  return 0;
}

// ---- lcdata synth (docs/longctx.md) ----------------------------------------------------------
long long synth_int(const Args& a, const std::string& name, long long fallback, long long lo, long long hi) {
  const std::string v = a.value(name);
  if (v.empty()) return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw lct::InputError(lct::str(name, " ", v, " must be an integer in [", lo, ", ", hi, "]"));
  return x;
}

double synth_float(const Args& a, const std::string& name, double fallback, double lo, double hi) {
  const std::string v = a.value(name);
  if (v.empty()) return fallback;
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (*end != '\0' || !(x >= lo && x <= hi))
    throw lct::InputError(lct::str(name, " ", v, " must be a number in [", lo, ", ", hi, "]"));
  return x;
}

int cmd_synth(int argc, char** argv) {
  const Args a = parse_args(argc, argv,
                            {"--task", "--length", "--docs", "--out", "--seed", "--key-len", "--value-len", "--needles",
                             "--min-needles", "--queries", "--depth", "--filler", "--filler-loss", "--text", "--tokenizer"},
                            {"--no-needle", "--value-classes"});
  if (!a.positional.empty()) throw lct::InputError(lct::str("lcdata synth takes no positional arguments\n", kUsage));
  const std::string out = a.value("--out");
  if (out.empty()) throw lct::InputError("lcdata synth: --out FILE.h5 is required");
  if (!is_hdf5_name(out))
    throw lct::InputError(lct::str("lcdata synth: ", out, ": synthetic data has a loss mask, which only the hdf5 "
                                   "format stores; name the output .h5"));
  make_parent_dir(out);
  lct::SynthSpec spec;
  spec.task = lct::parse_synth_task(a.value("--task", "niah"), "lcdata synth --task");
  const bool kv = spec.task == lct::SynthTask::Kv;
  spec.length = synth_int(a, "--length", 256, 16, 1ll << 31);
  const long long docs = synth_int(a, "--docs", 1000, 1, 1ll << 40);
  const uint64_t seed = uint64_t(synth_int(a, "--seed", 1, 0, 1ll << 62));
  spec.key_len = int(synth_int(a, "--key-len", spec.key_len, 1, 16));
  spec.value_len = int(synth_int(a, "--value-len", spec.task == lct::SynthTask::Passkey ? 5 : spec.value_len, 1, 64));
  spec.needles = int(synth_int(a, "--needles", kv ? 4 : 1, 1, 1 << 20));
  spec.min_needles = int(synth_int(a, "--min-needles", spec.needles, 1, 1 << 20));
  spec.queries = int(synth_int(a, "--queries", 1, 1, 1 << 20));
  spec.filler = a.value("--filler", a.value("--text").empty() ? "markov" : "text");
  spec.filler_loss = synth_float(a, "--filler-loss", 0, 0, 1);
  spec.value_classes = a.flag("--value-classes");
  const std::string depth_text = a.value("--depth", "random");
  const double depth = depth_text == "random" ? -1 : synth_float(a, "--depth", 0, 0, 100);
  std::unique_ptr<lct::Tokenizer> tok;
  if (!a.value("--text").empty()) {
    if (spec.filler != "text") throw lct::InputError("lcdata synth: --text goes with --filler text (or no --filler)");
    const std::string spec_name = a.value("--tokenizer");
    if (spec_name.empty()) throw lct::InputError("lcdata synth: --text needs --tokenizer bytes|PATH/tokenizer.json");
    tok = lct::make_tokenizer(spec_name);
    spec.tokenizer = tok.get();
    spec.text_tokens = tok->encode(read_text(a.value("--text")), false);
  } else if (spec.filler == "text") {
    throw lct::InputError("lcdata synth: --filler text needs --text FILE (the haystack) and --tokenizer");
  }
  spec.validate();

  lct::WriterPlan plan;
  plan.num_tokens = docs * spec.length;
  plan.num_documents = docs;
  plan.vocab_size = tok ? tok->vocab_size() : lct::SynthVocab::kVocabSize;
  plan.tokenizer = tok ? tok->name() : spec.describe();
  plan.eod_token = -1;  // documents are exactly one training sample: nothing joins them
  plan.dtype = lct::dtype_for_vocab(plan.vocab_size);
  plan.loss_mask = true;
  auto w = lct::make_token_writer(out, lct::TokenFormat::Hdf5, plan);
  int64_t answers = 0, masked = 0;
  for (long long i = 0; i < docs; ++i) {
    const lct::SynthDoc d = lct::make_synth_doc(spec, seed, uint64_t(i), depth, !a.flag("--no-needle"));
    w->append(d.tokens.data(), d.loss_mask.data(), spec.length);
    w->end_document();
    for (size_t q = 0; q < d.answer_begin.size(); ++q) answers += d.answer_end[q] - d.answer_begin[q];
    for (uint8_t m : d.loss_mask) masked += m;
  }
  w->finish();
  std::printf("wrote %s (hdf5): %lld documents of %lld tokens, task %s, %lld answer tokens, %lld tokens with loss "
              "mask 1, vocab_size %lld, tokenizer '%s', seed %llu\n",
              out.c_str(), docs, (long long)spec.length, lct::synth_task_name(spec.task), (long long)answers,
              (long long)masked, (long long)plan.vocab_size, plan.tokenizer.c_str(), (unsigned long long)seed);
  return 0;
}

// ---- lcdata ruler (docs/longctx.md, section 2b) -----------------------------------------------
void write_units(const std::string& out, const lct::Tokenizer& tok, long long units, int64_t unit,
                 const std::function<lct::RulerTrainUnit(uint64_t)>& make, long long& docs, long long& answers,
                 long long& masked, long long& padding) {
  make_parent_dir(out);
  lct::WriterPlan plan;
  plan.num_tokens = units * unit;
  plan.num_documents = units;
  plan.vocab_size = tok.vocab_size();
  plan.tokenizer = tok.name();
  plan.eod_token = -1;  // documents begin with BOS (data.bos_token); units are exactly one training sample
  plan.dtype = lct::dtype_for_vocab(plan.vocab_size);
  plan.loss_mask = true;
  auto w = lct::make_token_writer(out, lct::TokenFormat::Hdf5, plan);
  for (long long i = 0; i < units; ++i) {
    const lct::RulerTrainUnit u = make(uint64_t(i));
    w->append(u.tokens.data(), u.loss_mask.data(), unit);
    w->end_document();
    docs += u.documents;
    answers += u.answer_tokens;
    for (uint8_t m : u.loss_mask) masked += m;
    padding += u.padding;
  }
  w->finish();
}

// Copy practice (--task copy) and recall practice (--task recall): not RULER tasks.
int cmd_ruler_practice(const Args& a, const std::string& out) {
  const std::string task = a.value("--task");
  const bool recall = task == "recall";
  for (const char* o : {"--min-length", "--haystack", "--prompt-loss", "--cwe-freq"})
    if (!a.value(o).empty()) throw lct::InputError(lct::str("lcdata ruler --task ", task, ": ", o, " applies to the RULER tasks only"));
  std::unique_ptr<lct::Tokenizer> tok = lct::make_tokenizer(a.value("--tokenizer", "bytes"));
  lct::CopyTrainOptions o;
  o.tokenizer = tok.get();
  o.unit = synth_int(a, "--unit", 0, 0, 1ll << 31);
  if (o.unit <= 0) throw lct::InputError("lcdata ruler: --unit N (tokens per unit, = train.seq_len) is required");
  o.max_gap = synth_int(a, "--max-gap", 0, 0, 1ll << 31);
  o.seed = uint64_t(synth_int(a, "--seed", 1, 0, 1ll << 62));
  const long long units = synth_int(a, "--docs", 1000, 1, 1ll << 40);
  o.recall = recall;
  o.prepare("lcdata ruler --task " + task);
  long long docs = 0, answers = 0, masked = 0, padding = 0;
  write_units(out, *tok, units, o.unit, [&](uint64_t i) {
    return recall ? lct::make_recall_train_unit(o, i) : lct::make_copy_train_unit(o, i);
  }, docs, answers, masked, padding);
  std::printf("wrote %s (hdf5): %lld units of %lld tokens, %s practice (gaps of 0 to %lld tokens of noise), %lld "
              "documents, %lld answer tokens, %lld padding tokens, tokenizer '%s', seed %llu (train with "
              "data.bos_token = %d, data.reset_attention_mask and data.reset_position_ids)\n",
              out.c_str(), units, (long long)o.unit, task.c_str(), (long long)o.max_gap, docs, answers, padding, tok->name().c_str(),
              (unsigned long long)o.seed, tok->bos_id());
  return 0;
}

int cmd_ruler(int argc, char** argv) {
  const Args a = parse_args(
      argc, argv,
      {"--task", "--unit", "--docs", "--out", "--min-length", "--seed", "--tokenizer", "--haystack", "--prompt-loss", "--cwe-freq",
       "--max-gap"}, {});
  if (!a.positional.empty()) throw lct::InputError(lct::str("lcdata ruler takes no positional arguments\n", kUsage));
  const std::string out = a.value("--out");
  if (out.empty()) throw lct::InputError("lcdata ruler: --out FILE.h5 is required");
  if (!is_hdf5_name(out))
    throw lct::InputError(lct::str("lcdata ruler: ", out, ": the data has a loss mask, which only the hdf5 format "
                                   "stores; name the output .h5"));
  if (a.value("--task").empty())
    throw lct::InputError("lcdata ruler: --task NAME is required (a RULER task of eval.tasks, or copy or recall)");
  if (a.value("--task") == "copy" || a.value("--task") == "recall") return cmd_ruler_practice(a, out);
  if (!a.value("--max-gap").empty()) throw lct::InputError("lcdata ruler: --max-gap applies to --task copy and recall only");
  lct::RulerTrainOptions o;
  const std::string freq = a.value("--cwe-freq", "0,0");
  const size_t comma = freq.find(',');
  char *e1 = nullptr, *e2 = nullptr;
  const long fc = std::strtol(freq.substr(0, comma).c_str(), &e1, 10);
  const long fu = comma == std::string::npos ? -1 : std::strtol(freq.c_str() + comma + 1, &e2, 10);
  if (comma == std::string::npos || *e1 != '\0' || *e2 != '\0' || fc < 0 || fu < 0 || fc > 1000000 || fu > 1000000)
    throw lct::InputError(lct::str("lcdata ruler: --cwe-freq ", freq, ": give two integers CW,UCW (e.g. 3,1)"));
  const lct::RulerTask task = lct::with_cwe_frequencies(lct::ruler_task(a.value("--task"), "lcdata ruler --task"),
                                                        int(fc), int(fu), "lcdata ruler --cwe-freq");
  if (a.value("--task") != "cwe" && (fc != 0 || fu != 0))
    throw lct::InputError("lcdata ruler: --cwe-freq applies to --task cwe only");
  o.task = &task;
  o.unit = synth_int(a, "--unit", 0, 0, 1ll << 31);
  if (o.unit <= 0) throw lct::InputError("lcdata ruler: --unit N (tokens per unit, = train.seq_len) is required");
  const long long units = synth_int(a, "--docs", 1000, 1, 1ll << 40);
  o.seed = uint64_t(synth_int(a, "--seed", 1, 0, 1ll << 62));
  o.prompt_loss = synth_float(a, "--prompt-loss", 0, 0, 1);
  o.min_length = synth_int(a, "--min-length", 0, 0, 1ll << 31);
  std::unique_ptr<lct::Tokenizer> tok = lct::make_tokenizer(a.value("--tokenizer", "bytes"));
  o.tokenizer = tok.get();
  if (!a.value("--haystack").empty()) o.essay = lct::read_text_input(a.value("--haystack"), "lcdata ruler --haystack");
  o.prepare(lct::str("lcdata ruler (task ", o.task->name, ")"));
  long long docs = 0, answers = 0, masked = 0, padding = 0;
  write_units(out, *tok, units, o.unit, [&](uint64_t i) { return lct::make_ruler_train_unit(o, i); }, docs, answers,
              masked, padding);
  std::printf("wrote %s (hdf5): %lld units of %lld tokens, task %s, %lld documents (%lld to %lld tokens), %lld answer tokens, "
              "%lld tokens with loss mask 1, %lld padding tokens, tokenizer '%s', seed %llu (train with data.bos_token = %d, "
              "data.reset_attention_mask and data.reset_position_ids)\n",
              out.c_str(), units, (long long)o.unit, o.task->name.c_str(), docs, (long long)o.min_length,
              (long long)o.unit, answers, masked, padding,
              tok->name().c_str(), (unsigned long long)o.seed, tok->bos_id());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // HDF5 1.10 keeps an internal reference when opening a damaged object header fails, and at exit
  // prints "infinite loop closing library" after our error message. Skipping its exit-time cleanup
  // (the process ends anyway) keeps the output to the one clear message.
  H5dont_atexit();
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "text") return cmd_text(argc, argv);
    if (cmd == "info") return cmd_info(argc, argv);
    if (cmd == "chat") return cmd_chat(argc, argv);
    if (cmd == "tokens") return cmd_tokens(argc, argv);
    if (cmd == "convert") return cmd_convert(argc, argv);
    if (cmd == "synth") return cmd_synth(argc, argv);
    if (cmd == "ruler") return cmd_ruler(argc, argv);
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    throw lct::InputError(cmd.empty() ? lct::str("no command given\n", kUsage)
                                      : lct::str("unknown command '", cmd, "'\n", kUsage));
  } catch (const lct::Error& e) {
    std::fprintf(stderr, "lcdata: error: %s\n", e.what());
    return e.code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lcdata: error: %s\n", e.what());
    return lct::kExitFailure;
  }
}
