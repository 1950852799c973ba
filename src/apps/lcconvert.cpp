// lcconvert: Hugging Face export/import of lctrain checkpoints (docs/checkpoint-format.md).
//   lcconvert to-hf CHECKPOINT OUTDIR [--dtype bf16|fp32] [--shard-bytes N] [--max-position-embeddings N]
//   lcconvert from-hf HF_DIR CHECKPOINT
//   lcconvert logits CHECKPOINT OUT.h5 --tokens 1,2,3   (logits of one sequence, for checks)
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "ckpt/hf_convert.h"
#include "core/error.h"
#include "core/memory.h"
#include "io/h5file.h"

namespace {

const char* kUsage =
    "usage: lcconvert to-hf CHECKPOINT OUTDIR [--dtype bf16|fp32] [--shard-bytes N] [--max-position-embeddings N]\n"
    "       lcconvert from-hf HF_DIR CHECKPOINT\n"
    "       lcconvert logits CHECKPOINT OUT.h5 --tokens ID,ID,...\n";

int64_t num(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end || x <= 0) throw lct::InputError(flag + " needs a positive integer, got '" + v + "'");
  return x;
}

int run(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.empty() || a[0] == "--help" || a[0] == "-h") {
    std::fputs(kUsage, a.empty() ? stderr : stdout);
    return a.empty() ? 2 : 0;
  }
  const std::string cmd = a[0];
  std::vector<std::string> pos;
  lct::ExportOptions opt;
  std::string tokens;
  for (size_t i = 1; i < a.size(); ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= a.size()) throw lct::InputError(a[i] + " needs a value\n" + kUsage);
      return a[++i];
    };
    if (a[i] == "--dtype") opt.dtype = value();
    else if (a[i] == "--shard-bytes") opt.shard_bytes = uint64_t(num(a[i], value()));
    else if (a[i] == "--max-position-embeddings") opt.max_position_embeddings = num(a[i], value());
    else if (a[i] == "--tokens") tokens = value();
    else if (a[i].rfind("--", 0) == 0) throw lct::InputError("unknown option " + a[i] + "\n" + kUsage);
    else pos.push_back(a[i]);
  }
  if (pos.size() != 2) throw lct::InputError(std::string("expected two paths\n") + kUsage);
  if (cmd == "to-hf") {
    std::puts(lct::export_to_hf(pos[0], pos[1], opt).c_str());
    std::printf("peak RSS %lld bytes\n", (long long)lct::peak_rss_bytes());  // streaming: ~ the largest tensor
  } else if (cmd == "from-hf") {
    std::puts(lct::import_from_hf(pos[0], pos[1]).c_str());
    std::printf("peak RSS %lld bytes\n", (long long)lct::peak_rss_bytes());
  } else if (cmd == "logits") {
    std::vector<int32_t> ids;
    std::stringstream ss(tokens);
    std::string t;
    while (std::getline(ss, t, ',')) {
      char* end = nullptr;
      const long id = std::strtol(t.c_str(), &end, 10);
      if (t.empty() || *end || id < 0 || id > 2147483647L)
        throw lct::InputError("--tokens: '" + t + "' is not a token id (ids are integers from 0 to vocab_size - 1)");
      ids.push_back(int32_t(id));
    }
    if (ids.empty()) throw lct::InputError("logits needs --tokens ID,ID,...");
    std::vector<float> l = lct::checkpoint_logits(pos[0], ids);
    const int64_t V = int64_t(l.size() / ids.size());
    lct::H5File f(pos[1], lct::H5File::Create);
    hsize_t dims[2] = {hsize_t(ids.size()), hsize_t(V)};
    hid_t sp = H5Screate_simple(2, dims, nullptr);
    hid_t ds = H5Dcreate2(f.id(), "/logits", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, l.data());
    H5Dclose(ds);
    H5Sclose(sp);
    std::printf("wrote %s: logits [%zu, %lld]\n", pos[1].c_str(), ids.size(), (long long)V);
  } else {
    throw lct::InputError("unknown command '" + cmd + "'\n" + kUsage);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const lct::Error& e) {
    std::fprintf(stderr, "lcconvert error: %s\n", e.what());
    return e.code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lcconvert error: %s\n", e.what());
    return 1;
  }
}
