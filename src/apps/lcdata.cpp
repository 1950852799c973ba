// lcdata: data preparation. Tokenize text into a token file, print what a token file holds, convert
// between the formats the trainer reads. Usage and formats: docs/data.md.
#include <hdf5.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/prepare.h"
#include "data/tokenizer.h"

namespace {

const char* kUsage =
    "usage:\n"
    "  lcdata text --tokenizer bytes|PATH/tokenizer.json --out FILE [--format hdf5|llmc|megatron]\n"
    "              [--bos] [--no-eod] [--parse-special] INPUT...\n"
    "      each INPUT file is one document ('-' reads stdin); documents end with the tokenizer's\n"
    "      end-of-text token (hdf5: as the eod_token attribute; llmc/megatron: written after each one)\n"
    "  lcdata info FILE [--format auto|hdf5|llmc|megatron]\n"
    "      format, counts, vocabulary, id range, loss mask and SHA-256 checksums of a token file\n"
    "  lcdata convert IN OUT [--format hdf5|llmc|megatron] [--drop-loss-mask]\n"
    "      rewrites a token file in another format (default: by OUT's extension, else hdf5)\n"
    "  lcdata synth ...   (not yet available)\n"
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
      if (takes_value && eq == std::string::npos) {
        if (i + 1 >= argc) throw lct::InputError(lct::str("option ", name, " needs a value"));
        value = argv[++i];
      }
      a.options.emplace_back(name, value);
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

std::string read_text(const std::string& path) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw lct::InputError(lct::str("input ", path, ": cannot open"));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int cmd_text(int argc, char** argv) {
  const Args a = parse_args(argc, argv, {"--tokenizer", "--out", "--format"}, {"--bos", "--no-eod", "--parse-special"});
  const std::string spec = a.value("--tokenizer"), out = a.value("--out");
  if (spec.empty()) throw lct::InputError("lcdata text: --tokenizer is required (bytes or a tokenizer.json path)");
  if (out.empty()) throw lct::InputError("lcdata text: --out is required");
  if (a.positional.empty()) throw lct::InputError("lcdata text: no INPUT files (use - for stdin)");
  const lct::TokenFormat format = lct::output_format(out, a.value("--format"));
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
    if (cmd == "convert") return cmd_convert(argc, argv);
    if (cmd == "synth")
      throw lct::InputError("lcdata synth is not available yet: the synthetic long-context generators (passkey, "
                            "key-value recall, needle in a haystack) are still being designed; see docs/data.md");
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
