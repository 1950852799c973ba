// The PTX guard (CTest cuda_ptx_guard): compiles every cuda/*.cu once for sm_90 to PTX with all
// warnings as errors, assembles the PTX with ptxas -v, and checks each kernel against the
// committed table tests/gpu/ptx_table.json:
//   - the kernels of each file are exactly the table's;
//   - per kernel, the counts of shfl.sync, float atomics (atom/red .add.f32/.f64) and mma.sync
//     instructions equal the table's (with another nvcc than the table's: zero stays zero and
//     nonzero stays nonzero). This is what catches a warp shuffle or an atomic that nvcc folded
//     away, e.g. a wrapper that calls itself instead of the intrinsic;
//   - no kernel spills registers or uses a stack frame (local memory) unless its table entry has
//     a "local_memory_reason" (docs/cuda.md says why).
// Registers, spill bytes and stack frames are recorded in the table; register changes print as
// notes. `--update` rewrites the table from this compile (tools/update_ptx_table.sh), keeping
// the reasons; the diff is then reviewed like code.
//
// Usage: ptx_guard --nvcc NVCC --ptxas PTXAS --table FILE --out DIR [--update]
//                  [--flag F]... FILE.cu...
#include <cxxabi.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

using nlohmann::ordered_json;

struct Counts {
  int shfl = 0, atomics = 0, mma = 0;
};
struct Resources {
  int registers = -1, spill_stores = 0, spill_loads = 0, stack_frame = 0;
};

// Runs a shell command; returns its exit status and its combined output.
int run(const std::string& cmd, std::string& output) {
  output.clear();
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
  const int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string quote(const std::string& s) { return "'" + std::regex_replace(s, std::regex("'"), "'\\''") + "'"; }

// "lct::cuda::(anonymous namespace)::attn_fwd_kernel<16>(...)" without the namespaces and the
// return type: stable across machines (the mangled anonymous namespace carries a file hash).
std::string readable(const std::string& mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status), std::free);
  std::string s = status == 0 && d ? std::string(d.get()) : mangled;
  s = std::regex_replace(s, std::regex(R"(lct::cuda::\(anonymous namespace\)::)"), "");
  s = std::regex_replace(s, std::regex(R"(lct::cuda::)"), "");
  if (s.rfind("void ", 0) == 0) s = s.substr(5);
  return s;
}

// Counts per .entry (and per non-inlined .func, which gets its own row: its instructions are
// not in the kernels that call it).
std::map<std::string, Counts> count_ptx(const std::string& ptx, std::map<std::string, std::string>& mangled_of) {
  static const std::regex head(R"(^(?:\.visible\s+|\.weak\s+)?\.(entry|func)\s+(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*))");
  static const std::regex shfl(R"(\bshfl\.sync\b)"), mma(R"(\bmma\.sync\b)");
  static const std::regex atomic(R"(\b(?:atom|red)(?:\.[a-z0-9_]+)*\.add(?:\.[a-z0-9_]+)*\.f(?:32|64)\b)");
  std::map<std::string, Counts> out;
  std::istringstream in(ptx);
  std::string line, cur;
  bool in_body = false;
  auto count = [](const std::string& l, const std::regex& re) {
    return int(std::distance(std::sregex_iterator(l.begin(), l.end(), re), std::sregex_iterator()));
  };
  while (std::getline(in, line)) {
    std::smatch m;
    if (!in_body && std::regex_search(line, m, head)) {
      const std::string name = (m[1] == "func" ? "func " : "") + readable(m[2]);
      cur = name;
      mangled_of[name] = m[2];
      out[cur];
      continue;
    }
    if (cur.empty()) continue;
    if (line == "{") {
      in_body = true;
      continue;
    }
    if (line == "}") {
      in_body = false;
      cur.clear();
      continue;
    }
    if (!in_body) continue;
    const std::string code = line.substr(0, line.find("//"));
    Counts& c = out[cur];
    c.shfl += count(code, shfl);
    c.mma += count(code, mma);
    c.atomics += count(code, atomic);
  }
  return out;
}

// ptxas -v: "Compiling entry function 'NAME'", "N bytes stack frame, N bytes spill stores, N
// bytes spill loads", "Used N registers".
std::map<std::string, Resources> parse_ptxas(const std::string& log) {
  static const std::regex fn(R"(Function properties for ([\w$]+))");
  static const std::regex frame(R"((\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads)");
  static const std::regex regs(R"(Used (\d+) registers)");
  std::map<std::string, Resources> out;
  std::istringstream in(log);
  std::string line, cur;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, fn)) {
      cur = m[1];
    } else if (!cur.empty() && std::regex_search(line, m, frame)) {
      Resources& r = out[cur];
      r.stack_frame = std::stoi(m[1]);
      r.spill_stores = std::stoi(m[2]);
      r.spill_loads = std::stoi(m[3]);
    } else if (!cur.empty() && std::regex_search(line, m, regs)) {
      out[cur].registers = std::stoi(m[1]);
    }
  }
  return out;
}

std::string base_name(const std::string& p) { return p.substr(p.find_last_of('/') + 1); }

}  // namespace

int main(int argc, char** argv) {
  std::string nvcc, ptxas, table_path, out_dir;
  bool update = false;
  std::vector<std::string> flags, sources;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "ptx_guard: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--nvcc") nvcc = next();
    else if (a == "--ptxas") ptxas = next();
    else if (a == "--table") table_path = next();
    else if (a == "--out") out_dir = next();
    else if (a == "--flag") flags.push_back(next());
    else if (a == "--update") update = true;
    else sources.push_back(a);
  }
  if (nvcc.empty() || ptxas.empty() || table_path.empty() || out_dir.empty() || sources.empty()) {
    std::cerr << "usage: ptx_guard --nvcc NVCC --ptxas PTXAS --table FILE --out DIR [--update] [--flag F]... FILE.cu...\n";
    return 2;
  }

  std::string version_out;
  run(quote(nvcc) + " --version", version_out);
  std::smatch vm;
  const std::string nvcc_version =
      std::regex_search(version_out, vm, std::regex(R"(V(\d+\.\d+\.\d+))")) ? std::string(vm[1]) : "unknown";

  ordered_json table;
  {
    std::ifstream f(table_path);
    if (f) table = ordered_json::parse(f);
    else if (!update) {
      std::cerr << "ptx_guard: no table " << table_path << " (make one with tools/update_ptx_table.sh)\n";
      return 1;
    }
  }
  if (!table.is_object()) table = ordered_json::object();
  const bool same_nvcc = table.value("nvcc", "") == nvcc_version;
  std::vector<std::string> failures;
  ordered_json fresh = {{"nvcc", nvcc_version}, {"arch", "sm_90"}, {"files", ordered_json::object()}};

  std::filesystem::create_directories(out_dir);
  bool compiled = true;
  std::string cmd_flags;
  for (const auto& f : flags) cmd_flags += " " + quote(f);
  for (const std::string& src : sources) {
    const std::string file = base_name(src), ptx = out_dir + "/" + file + ".ptx", cubin = out_dir + "/" + file + ".cubin";
    std::string log;
    // One nvcc run per file: sm_90 PTX, every nvcc and host-compiler warning an error.
    const std::string compile = quote(nvcc) + " -arch=sm_90 --ptx -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror" +
                                cmd_flags + " " + quote(src) + " -o " + quote(ptx);
    if (run(compile, log) != 0) {
      failures.push_back(file + ": nvcc failed (warnings are errors):\n" + log);
      compiled = false;
      continue;
    }
    if (run(quote(ptxas) + " -arch=sm_90 -v -Werror " + quote(ptx) + " -o " + quote(cubin), log) != 0) {
      failures.push_back(file + ": ptxas failed:\n" + log);
      compiled = false;
      continue;
    }
    const std::map<std::string, Resources> res = parse_ptxas(log);
    std::ifstream pf(ptx);
    std::stringstream ps;
    ps << pf.rdbuf();
    std::map<std::string, std::string> mangled_of;
    const std::map<std::string, Counts> counts = count_ptx(ps.str(), mangled_of);

    const ordered_json& old = table.contains("files") && table["files"].contains(file) ? table["files"][file]
                                                                                     : ordered_json::object();
    ordered_json& now = fresh["files"][file];
    now = ordered_json::object();
    for (const auto& [name, c] : counts) {
      const auto r = res.count(mangled_of[name]) ? res.at(mangled_of[name]) : Resources{};
      ordered_json e = {{"shfl_sync", c.shfl},          {"float_atomics", c.atomics},      {"mma_sync", c.mma},
                        {"registers", r.registers},      {"spill_stores", r.spill_stores}, {"spill_loads", r.spill_loads},
                        {"stack_frame", r.stack_frame}};
      if (old.contains(name) && old[name].contains("local_memory_reason"))
        e["local_memory_reason"] = old[name]["local_memory_reason"];
      std::printf("%-14s %-70.70s shfl %3d  atomics %3d  mma %4d  regs %3d  spill %d/%d  stack %d\n", file.c_str(),
                  name.c_str(), c.shfl, c.atomics, c.mma, r.registers, r.spill_stores, r.spill_loads, r.stack_frame);
      if ((r.spill_stores || r.spill_loads || r.stack_frame) && !e.contains("local_memory_reason"))
        failures.push_back(file + ": " + name + " uses local memory (spill " + std::to_string(r.spill_stores) + "/" +
                           std::to_string(r.spill_loads) + " bytes, stack frame " + std::to_string(r.stack_frame) +
                           ") and the table gives no local_memory_reason");
      if (!update) {
        if (!old.contains(name)) {
          failures.push_back(file + ": kernel " + name + " is not in the table");
        } else {
          const ordered_json& o = old[name];
          for (const char* k : {"shfl_sync", "float_atomics", "mma_sync"}) {
            const int want = o.value(k, -1), got = e[k].get<int>();
            const bool ok = same_nvcc ? got == want : (got == 0) == (want == 0);
            if (!ok)
              failures.push_back(file + ": " + name + ": " + k + " = " + std::to_string(got) + ", table " +
                                 std::to_string(want) + (same_nvcc ? "" : " (other nvcc: only zero/nonzero compared)"));
          }
          if (o.value("registers", -1) != r.registers)
            std::printf("  note: registers %d, table %d\n", r.registers, o.value("registers", -1));
        }
      }
      now[name] = e;
    }
    if (!update)
      for (const auto& [name, e] : old.items())
        if (!counts.count(name)) failures.push_back(file + ": kernel " + name + " of the table is gone");
  }
  if (!update && !same_nvcc)
    std::printf("note: table made with nvcc %s, this is %s: counts compared as zero/nonzero only\n",
                table.value("nvcc", "?").c_str(), nvcc_version.c_str());

  if (update) {
    // Written whenever everything compiled; a kernel that needs local memory still fails until
    // a reviewer adds its local_memory_reason.
    if (compiled) {
      std::ofstream(table_path) << fresh.dump(2) << "\n";
      std::printf("wrote %s\n", table_path.c_str());
    } else {
      std::printf("table not written\n");
    }
  }
  for (const auto& f : failures) std::printf("FAIL %s\n", f.c_str());
  std::printf("%s: %zu failure(s)\n", failures.empty() ? "PASS" : "FAIL", failures.size());
  return failures.empty() ? 0 : 1;
}
