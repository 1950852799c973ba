#include "ckpt/checkpoint.h"

#include <hdf5.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ckpt/tensor_ranges.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "io/h5file.h"
#include "parallel/agree.h"

namespace lct {
namespace fs = std::filesystem;

namespace {

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld.h5", (long long)step);
  return buf;
}

std::vector<hsize_t> full_dims(const ParamSpec& p) {
  return p.is_vector ? std::vector<hsize_t>{hsize_t(p.rows)} : std::vector<hsize_t>{hsize_t(p.rows), hsize_t(p.cols)};
}

// Selects the runs of one tensor in its file dataspace (row-major element ranges).
void select_runs(hid_t space, const ParamSpec& p, const std::vector<const TensorRun*>& runs) {
  H5Sselect_none(space);
  for (const TensorRun* r : runs) {
    if (p.is_vector) {
      hsize_t start = hsize_t(r->full), count = hsize_t(r->count);
      H5Sselect_hyperslab(space, H5S_SELECT_OR, &start, nullptr, &count, nullptr);
      continue;
    }
    for (const Rect& q : rects_of_range(r->full, r->full + r->count, p.cols)) {
      hsize_t start[2] = {hsize_t(q.row), hsize_t(q.col)}, count[2] = {hsize_t(q.rows), hsize_t(q.cols)};
      H5Sselect_hyperslab(space, H5S_SELECT_OR, start, nullptr, count, nullptr);
    }
  }
}

// Test hook LCT_DEBUG_CKPT_WRITES=DIR: each rank writes the hyperslabs it selects for writing, as HDF5
// holds them just before H5Dwrite, to DIR/step_<step>_rank<r>.jsonl (one line per dataset:
// {"dataset", "tp_rank", "blocks": [[start..., end...], ...]}, ends inclusive). A test then checks
// that the ranks' writes are disjoint, cover every dataset, and that tp-replicated tensors come
// from tp rank 0 alone (tests/train/test_checkpoint_resume.cpp).
class WriteLog {
 public:
  static std::unique_ptr<WriteLog> from_env(int64_t step, int rank, int tp_rank) {
    const char* dir = std::getenv("LCT_DEBUG_CKPT_WRITES");
    if (!dir || !*dir) return nullptr;
    std::error_code ec;
    fs::create_directories(dir, ec);
    auto log = std::make_unique<WriteLog>();
    log->out_.open(str(dir, "/step_", step, "_rank", rank, ".jsonl"));
    if (!log->out_) throw Error(kExitFailure, str("LCT_DEBUG_CKPT_WRITES: cannot write to ", dir));
    log->tp_rank_ = tp_rank;
    return log;
  }
  void record(const std::string& dataset, hid_t space) {
    nlohmann::json blocks = nlohmann::json::array();
    if (H5Sget_select_type(space) == H5S_SEL_HYPERSLABS) {
      const int nd = H5Sget_simple_extent_ndims(space);
      const hssize_t nb = H5Sget_select_hyper_nblocks(space);
      std::vector<hsize_t> b(size_t(std::max<hssize_t>(nb, 0)) * 2 * size_t(nd));
      if (nb > 0) H5Sget_select_hyper_blocklist(space, 0, hsize_t(nb), b.data());
      for (hssize_t i = 0; i < nb; ++i)
        blocks.push_back(std::vector<hsize_t>(b.begin() + i * 2 * nd, b.begin() + (i + 1) * 2 * nd));
    }
    out_ << nlohmann::json{{"dataset", dataset}, {"tp_rank", tp_rank_}, {"blocks", blocks}}.dump() << "\n";
  }

 private:
  std::ofstream out_;
  int tp_rank_ = 0;
};

hid_t parallel_fapl(MPI_Comm comm, const CheckpointConfig& cc) {
  MPI_Info info;
  MPI_Info_create(&info);
  std::istringstream hints(cc.mpiio_hints);
  std::string kv;
  while (std::getline(hints, kv, ',')) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InputError(str("checkpoint.mpiio_hints: '", kv, "' is not key=value (e.g. striping_factor=8)"), true);
    MPI_Info_set(info, kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str());
  }
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, comm, info);
  H5Pset_alignment(fapl, 4096, hsize_t(cc.alignment));
  H5Pset_all_coll_metadata_ops(fapl, true);
  H5Pset_coll_metadata_write(fapl, true);
  MPI_Info_free(&info);
  return fapl;
}

// Keeps the first failure of a checkpoint write in `error`, with the system's reason (errno: HDF5
// and MPI-IO leave ENOSPC there).
void note_failure(std::string& error, const std::string& what) {
  if (error.empty()) error = str(what, " (last system error: ", std::strerror(errno), ")");
}

// Writes one group of tensors (/model, /optim/exp_avg, ...) from a host copy of this rank's flat
// ranges (their elements back to back in `host`). Collective: every rank creates every dataset.
// write_replicated: tp-replicated tensors (norm weights) are written by tp rank 0 only.
// A failure (a full disk) is recorded in `error` (the first one) and the rank goes on making the
// same collective calls as the others: throwing here would leave them waiting in a collective.
int64_t write_tensors(hid_t file, hid_t dxpl, const std::string& group, const ParamTable& table,
                      const std::vector<FlatRange>& ranges, const std::vector<float>& host, bool write_replicated,
                      const std::function<void(size_t)>& after_each, WriteLog* log, std::string& error) {
  const std::vector<HostRun> runs = runs_of_ranges(table, ranges);
  int64_t bytes = 0;
  size_t next_run = 0;
  for (size_t i = 0; i < table.specs.size(); ++i) {
    const ParamSpec& p = table.specs[i];
    std::vector<hsize_t> dims = full_dims(p);
    hid_t fspace = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
    // Every element is written below: no fill values first (parallel HDF5 would write them all).
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    hid_t ds = H5Dcreate2(file, (group + "/" + p.name).c_str(), H5T_IEEE_F32LE, fspace, H5P_DEFAULT, dcpl,
                          H5P_DEFAULT);
    H5Pclose(dcpl);
    if (ds < 0) note_failure(error, str("cannot create dataset ", group, "/", p.name, " in the checkpoint"));
    std::vector<const TensorRun*> mine;
    std::vector<float> buf;
    while (next_run < runs.size() && runs[next_run].spec == int(i)) {
      const HostRun& r = runs[next_run++];
      if (p.split == Split::None && !write_replicated) continue;
      mine.push_back(&r);
      buf.insert(buf.end(), host.begin() + r.host, host.begin() + (r.host + r.count));
    }
    select_runs(fspace, p, mine);
    if (log) log->record(group + "/" + p.name, fspace);
    hsize_t n = hsize_t(buf.size());
    hsize_t one = 1;
    hid_t mspace = H5Screate_simple(1, n ? &n : &one, nullptr);
    if (!n) H5Sselect_none(mspace);
    herr_t st = ds >= 0 ? H5Dwrite(ds, H5T_NATIVE_FLOAT, mspace, fspace, dxpl, buf.empty() ? nullptr : buf.data()) : -1;
    H5Sclose(mspace);
    H5Sclose(fspace);
    if (ds >= 0) H5Dclose(ds);
    if (st < 0) note_failure(error, str("writing ", group, "/", p.name, " to the checkpoint failed"));
    bytes += int64_t(buf.size()) * 4;
    if (after_each) after_each(i);
  }
  return bytes;
}

// Reads this rank's flat ranges from a group of full tensors into `out` (their elements back to
// back; what lies in no tensor, the padding, stays zero).
std::vector<float> read_ranges(H5File& f, const std::string& group, const ParamTable& table,
                               const std::vector<FlatRange>& ranges) {
  int64_t total = 0;
  for (const FlatRange& r : ranges) total += r.len;
  std::vector<float> out(size_t(total), 0.0f);
  const std::vector<HostRun> runs = runs_of_ranges(table, ranges);
  size_t k = 0;
  while (k < runs.size()) {
    const int spec = runs[k].spec;
    const ParamSpec& p = table.specs[size_t(spec)];
    std::vector<const TensorRun*> mine;
    std::vector<float> buf;
    const size_t first = k;
    while (k < runs.size() && runs[k].spec == spec) {
      mine.push_back(&runs[k]);
      ++k;
    }
    size_t n = 0;
    for (const TensorRun* r : mine) n += size_t(r->count);
    buf.resize(n);
    const std::string name = group + "/" + p.name;
    hid_t ds = H5Dopen2(f.id(), name.c_str(), H5P_DEFAULT);
    if (ds < 0) throw InputError(str(f.path(), ": missing dataset ", name, " (truncated or not an lctrain checkpoint)"));
    hid_t fspace = H5Dget_space(ds);
    select_runs(fspace, p, mine);
    hsize_t hn = n;
    hid_t mspace = H5Screate_simple(1, &hn, nullptr);
    herr_t st = H5Dread(ds, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, buf.data());
    H5Sclose(mspace);
    H5Sclose(fspace);
    H5Dclose(ds);
    if (st < 0) throw InputError(str(f.path(), ": cannot read ", name, " (corrupt checkpoint)"));
    size_t at = 0;  // the runs, in file order, to their places in `out`
    for (size_t j = first; j < k; ++j) {
      std::copy_n(buf.begin() + int64_t(at), runs[j].count, out.begin() + runs[j].host);
      at += size_t(runs[j].count);
    }
  }
  return out;
}

}  // namespace

namespace {

// Test hook (docs/exit-codes.md): LCT_DEBUG_KILL_AT=<where>:<step> SIGKILLs rank 0 at that point
// of saving the checkpoint of that step: "renamed" (the file is complete, `latest` not updated yet)
// or "latest" (`latest` updated, older checkpoints not pruned yet).
void debug_kill_hook(const char* where, int64_t step) {
  const char* v = std::getenv("LCT_DEBUG_KILL_AT");
  if (!v) return;
  const std::string s = v;
  const size_t colon = s.find(':');
  if (colon == std::string::npos || s.substr(0, colon) != where || std::atoll(s.c_str() + colon + 1) != step) return;
  log_warn(str("killing rank 0 at '", where, "' of the step-", step, " checkpoint (LCT_DEBUG_KILL_AT)"));
  std::fflush(nullptr);
  std::raise(SIGKILL);
}

// Test hook (docs/exit-codes.md): LCT_DEBUG_CKPT_FSIZE=<step>:<rank>:<bytes> limits that world
// rank's file size (RLIMIT_FSIZE, SIGXFSZ ignored) while it writes the checkpoint of that step: its
// writes past <bytes> fail inside HDF5 as on a full disk. The limit is lifted when the writer
// empties the unfinished file (which frees a full disk) or the save ends.
class DebugFileSizeLimit {
 public:
  DebugFileSizeLimit(int64_t step, int world_rank) {
    const char* v = std::getenv("LCT_DEBUG_CKPT_FSIZE");
    long long s = 0, r = 0, bytes = 0;
    if (!v || std::sscanf(v, "%lld:%lld:%lld", &s, &r, &bytes) != 3 || s != step || r != world_rank) return;
    if (getrlimit(RLIMIT_FSIZE, &old_) != 0) return;
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = old_;
    lim.rlim_cur = rlim_t(bytes);
    active_ = setrlimit(RLIMIT_FSIZE, &lim) == 0;
    if (active_) log_warn(str("checkpoint of step ", step, ": files limited to ", bytes, " bytes (LCT_DEBUG_CKPT_FSIZE)"));
  }
  ~DebugFileSizeLimit() { lift(); }
  void lift() {
    if (active_) setrlimit(RLIMIT_FSIZE, &old_);
    active_ = false;
  }
  DebugFileSizeLimit(const DebugFileSizeLimit&) = delete;
  DebugFileSizeLimit& operator=(const DebugFileSizeLimit&) = delete;

 private:
  rlimit old_{};
  bool active_ = false;
};

// The run identity recorded in a checkpoint file, "" when it has none or cannot be read.
std::string identity_of(const std::string& path) {
  try {
    H5File f(path, H5File::Read);
    return f.has_attr("/", "run_identity") ? f.attr_str("/", "run_identity") : std::string();
  } catch (const Error&) {
    return "";
  }
}

}  // namespace

std::string latest_checkpoint_name(const std::string& checkpoints_dir) {
  std::ifstream f(checkpoints_dir + "/latest");
  std::string name;
  if (!(f >> name)) return "";
  return name;
}

SaveReport save_checkpoint(const Config& cfg, const SaveInfo& info, ParallelContext& ctx, Llama& model, Optimizer& opt,
                           Ops& ops, const TrainState& st) {
  const std::string& deck_text = info.deck_text;
  Timer timer;
  SaveReport rep;
  const std::string dir = cfg.run.out_dir + "/checkpoints";
  const std::string final_path = dir + "/" + step_name(st.step);
  const std::string tmp_path = final_path + ".tmp";
  rep.path = final_path;
  MPI_Comm world = ctx.world_mpi;
  const bool root = ctx.world_rank == 0;
  const ParamTable& table = model.table();
  const bool moments = opt.has_moments();
  agree(world, [&] {
    if (!root) return;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error(kExitFailure, str("cannot create ", dir, ": ", ec.message()));
    // Room for the data first: parallel HDF5 cannot fail a write on some ranks and still close the
    // file on all of them (a full disk found half-way may hang the job until run.hang_timeout).
    const int64_t need = table.full_numel() * 4 * (moments ? 3 : 1) + (int64_t(1) << 20);
    struct statvfs vfs {};
    int64_t avail = ::statvfs(dir.c_str(), &vfs) == 0 ? int64_t(vfs.f_bavail) * int64_t(vfs.f_frsize) : -1;
    if (const char* v = std::getenv("LCT_DEBUG_CKPT_FREE_BYTES")) avail = std::atoll(v);  // test hook
    if (avail >= 0 && avail < need)
      throw Error(kExitFailure, str("checkpoint ", final_path, " needs about ", need >> 20, " MiB but the file system of ", dir,
                                    " has ", avail >> 20, " MiB free; free space (or lower checkpoint.keep_last) and "
                                    "resume: `latest` and the previous checkpoints are kept"));
  });
  h5_quiet();

  // What this rank writes: its optimizer shard under ZeRO (one piece of every unit), everything
  // on the first dp x cp replica otherwise (the others hold the same values).
  (void)ops;
  std::vector<FlatRange> ranges;
  std::vector<float> master, m1, m2;
  if (opt.layout().parts() > 1 || ctx.dpcp->rank() == 0) {
    ranges = opt.layout().ranges();
    master = opt.download(Optimizer::State::Master);
    if (moments) {
      m1 = opt.download(Optimizer::State::Moment1);
      m2 = opt.download(Optimizer::State::Moment2);
    }
  }

  DebugFileSizeLimit fsize_hook(st.step, ctx.world_rank);
  hid_t fapl = parallel_fapl(world, cfg.checkpoint);
  hid_t file = H5Fcreate(tmp_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (file < 0) throw Error(kExitFailure, str("cannot create checkpoint file ", tmp_path), true);
  hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(dxpl, cfg.checkpoint.collective_io ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT);
  std::string write_error;  // this rank's first failure while writing
  {
    H5File f(file, tmp_path);
    for (const char* g : {"/model", "/optim", "/optim/exp_avg", "/optim/exp_avg_sq"}) {
      if (!moments && std::string(g).rfind("/optim/", 0) == 0) continue;
      f.make_groups(g);
    }
    CheckpointHeader h;
    h.model = cfg.model;
    h.rope = cfg.rope;
    h.seq_len = cfg.train.seq_len;
    h.deck_text = deck_text;
    h.init_from = cfg.model.init_from;
    h.optimizer = cfg.optim.name;
    h.run_name = cfg.run.name;
    const Layout& L = ctx.layout;
    h.world_size = L.topo.world_size;
    h.tp = L.tp;
    h.cp = L.cp;
    h.dp = L.dp;
    h.zero = cfg.parallel.zero;
    h.nodes = L.topo.num_nodes();
    h.state = st;
    h.run_identity = info.run_identity;
    h.run_identity_keys = info.run_identity_keys;
    h.lr_schedule = info.lr;
    try {
      write_checkpoint_header(f, h);  // the same attribute calls on every rank: they fail alike
    } catch (const Error& e) {
      write_error = e.what();
    }

    // Test hook (docs/checkpoint-format.md): pause half-way so a test can kill the writer.
    const char* pause = std::getenv("LCT_DEBUG_CKPT_PAUSE");
    auto hook = [&](size_t i) {
      if (pause && i == table.specs.size() / 2) {
        if (root) log_warn(str("checkpoint writer paused half-way through ", tmp_path, " (LCT_DEBUG_CKPT_PAUSE)"));
        sleep(unsigned(std::atoi(pause)));
      }
    };
    const bool replicated = ctx.me().tp_rank == 0;
    const auto log = WriteLog::from_env(st.step, ctx.world_rank, ctx.me().tp_rank);
    rep.bytes_this_rank +=
        write_tensors(f.id(), dxpl, "/model", table, ranges, master, replicated, hook, log.get(), write_error);
    if (moments) {
      rep.bytes_this_rank += write_tensors(f.id(), dxpl, "/optim/exp_avg", table, ranges, m1, replicated, nullptr,
                                           log.get(), write_error);
      rep.bytes_this_rank += write_tensors(f.id(), dxpl, "/optim/exp_avg_sq", table, ranges, m2, replicated, nullptr,
                                           log.get(), write_error);
    }
    // A failed write must reach every rank before HDF5's next collective step: its metadata flush
    // is a sequence of collective calls that a rank whose write failed leaves early (a hang).
    // After a failure the unfinished file is emptied: that frees the disk for the close's last
    // writes (a close that cannot flush leaves HDF5 a half-closed file that crashes it at
    // MPI_Finalize), and the file is removed below anyway.
    auto any_failed = [&] {
      int failed = write_error.empty() ? 0 : 1;
      MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, world);
      if (!failed) return false;
      if (root && ::truncate(tmp_path.c_str(), 0) != 0) note_failure(write_error, "cannot empty the unfinished file");
      fsize_hook.lift();  // as emptying the file frees a full disk
      MPI_Barrier(world);
      return true;
    };
    if (!any_failed()) {
      // HDF5 writes its metadata at the flush (collective): a full disk may show only now.
      if (H5Fflush(f.id(), H5F_SCOPE_GLOBAL) < 0) note_failure(write_error, "flushing the file failed");
      any_failed();
    }
    if (!f.close()) note_failure(write_error, "closing the file failed");
  }
  H5Pclose(dxpl);
  // Every rank's verdict before anything is renamed or pruned: an incomplete file is removed, and
  // `latest` and the older checkpoints stay as they were.
  try {
    agree(world, [&] {
      if (!write_error.empty())
        throw Error(kExitFailure, str("checkpoint ", tmp_path, ": ", write_error,
                                      "; is the disk full or the quota reached? The incomplete file is removed; "
                                      "`latest` and the previous checkpoints are kept"));
    });
  } catch (const Error&) {
    std::error_code ec;
    if (root) fs::remove(tmp_path, ec);
    throw;
  }
  agree(world, [&] {
    if (!root) return;
    std::error_code ec;
    fs::rename(tmp_path, final_path, ec);
    if (ec) throw Error(kExitFailure, str("cannot rename ", tmp_path, ": ", ec.message()));
    rep.file_bytes = int64_t(fs::file_size(final_path, ec));
    struct stat sb {};
    if (::stat(final_path.c_str(), &sb) == 0) rep.disk_bytes = int64_t(sb.st_blocks) * 512;
    debug_kill_hook("renamed", st.step);
    // `latest` names a complete file at every moment: written aside, then renamed over the old one.
    {
      std::ofstream lp(dir + "/latest.tmp");
      lp << step_name(st.step) << "\n";
      lp.close();  // the write reaches the file system here (a full disk shows now, not before)
      if (!lp) throw Error(kExitFailure, str("cannot write ", dir, "/latest.tmp (disk full?); `latest` still names the previous checkpoint"));
    }
    fs::rename(dir + "/latest.tmp", dir + "/latest", ec);
    if (ec) throw Error(kExitFailure, str("cannot rename ", dir, "/latest.tmp: ", ec.message()));
    debug_kill_hook("latest", st.step);
    // Prune: this run's checkpoints older than the one just written, beyond keep_last (which counts
    // the new one). Files of another run, without an identity, or newer than this step stay.
    std::vector<std::pair<int64_t, fs::path>> ours;
    const std::regex re("step_([0-9]{8,})\\.h5");
    for (const auto& e : fs::directory_iterator(dir)) {
      std::smatch m;
      const std::string name = e.path().filename().string();
      if (std::regex_match(name, m, re)) {
        const int64_t step = std::stoll(m[1]);
        if (step >= st.step) continue;
        const std::string id = identity_of(e.path().string());
        if (!id.empty() && std::find(info.own_identities.begin(), info.own_identities.end(), id) != info.own_identities.end())
          ours.emplace_back(step, e.path());
      } else if (name.size() > 7 && name.rfind(".h5.tmp") == name.size() - 7 && e.path() != fs::path(tmp_path)) {
        fs::remove(e.path(), ec);  // a writer that was killed earlier
      }
    }
    std::sort(ours.rbegin(), ours.rend());
    const size_t keep_older = size_t(std::max<int64_t>(cfg.checkpoint.keep_last, 1) - 1);
    for (size_t i = keep_older; i < ours.size(); ++i) {
      fs::remove(ours[i].second, ec);
      rep.pruned.push_back(ours[i].second.string());
    }
  });
  int64_t sizes[2] = {rep.file_bytes, rep.disk_bytes};
  MPI_Bcast(sizes, 2, MPI_INT64_T, 0, world);
  rep.file_bytes = sizes[0];
  rep.disk_bytes = sizes[1];
  int64_t total = rep.bytes_this_rank;
  MPI_Allreduce(&rep.bytes_this_rank, &total, 1, MPI_INT64_T, MPI_SUM, world);
  rep.bytes_total = total;
  rep.seconds = timer.seconds();
  return rep;
}

CheckpointMeta read_checkpoint_meta_local(const std::string& path) {
  CheckpointMeta meta;
  H5File f(path, H5File::Read);
  static_cast<CheckpointHeader&>(meta) = read_checkpoint_header(f);
  meta.path = path;
  // Every tensor the model config implies must be there with its full shape.
  const ParamTable table = ParamTable::build(meta.model, 1, 0);
  meta.has_moments = f.exists("/optim/exp_avg");
  for (const ParamSpec& p : table.specs) {
    std::vector<int64_t> want = p.is_vector ? std::vector<int64_t>{p.rows} : std::vector<int64_t>{p.rows, p.cols};
    for (const std::string g : {"/model", "/optim/exp_avg", "/optim/exp_avg_sq"}) {
      if (g != "/model" && !meta.has_moments) continue;
      const std::string name = g + "/" + p.name;
      if (!f.exists(name)) throw InputError(str(path, ": missing ", name, " (incomplete or not an lctrain checkpoint)"));
      if (f.shape(name) != want) throw InputError(str(path, ": ", name, " has the wrong shape"));
    }
  }
  return meta;
}

CheckpointMeta read_checkpoint_meta(const std::string& path, MPI_Comm comm, int root) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  CheckpointMeta meta;
  decide_on_root(comm, root, [&] { meta = read_checkpoint_meta_local(path); });
  // Everyone else reads the (now known good) metadata too: small, and the file is valid.
  if (rank != root) meta = read_checkpoint_meta_local(path);
  return meta;
}

std::string find_latest_checkpoint(const std::string& out_dir, MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string found;
  if (rank == 0) {
    const std::string dir = out_dir + "/checkpoints";
    std::vector<std::pair<int64_t, std::string>> all;
    std::error_code ec;
    const std::regex re("step_([0-9]{8,})\\.h5");
    if (fs::is_directory(dir, ec))
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        std::smatch m;
        const std::string name = e.path().filename().string();
        if (std::regex_match(name, m, re)) all.emplace_back(std::stoll(m[1]), e.path().string());
      }
    std::sort(all.rbegin(), all.rend());
    for (const auto& c : all) {
      try {
        read_checkpoint_meta_local(c.second);
        found = c.second;
        break;
      } catch (const Error& e) {
        log_warn(str("skipping checkpoint ", c.second, ": ", e.what()));
      }
    }
  }
  int n = int(found.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, comm);
  found.resize(size_t(n));
  MPI_Bcast(found.data(), n, MPI_CHAR, 0, comm);
  return found;
}

void check_model_matches(const CheckpointMeta& meta, const ModelConfig& m) {
  const ModelConfig& c = meta.model;
  auto check = [&](const char* key, double a, double b) {
    if (a != b)
      throw InputError(str(key, " = ", format_number(b), " in the deck, but the checkpoint ", meta.path, " has ",
                           format_number(a), "; the model shape must match the checkpoint (remove the key or fix it)"));
  };
  check("model.vocab_size", double(c.vocab_size), double(m.vocab_size));
  check("model.dim", double(c.dim), double(m.dim));
  check("model.n_layers", double(c.n_layers), double(m.n_layers));
  check("model.n_heads", double(c.n_heads), double(m.n_heads));
  check("model.n_kv_heads", double(c.n_kv_heads), double(m.n_kv_heads));
  check("model.head_dim", double(c.head_dim), double(m.head_dim));
  check("model.ffn_dim", double(c.ffn_dim), double(m.ffn_dim));
  check("model.tie_embeddings", double(c.tie_embeddings), double(m.tie_embeddings));
}

void load_checkpoint(const std::string& path, Llama& model, Ops& ops, Optimizer* opt, bool moments) {
  (void)ops;
  h5_quiet();
  H5File f(path, H5File::Read);
  const ParamTable& table = model.table();
  // The weights this rank holds (everything, or its ZeRO-3 shard), then its optimizer shard.
  ParamStore& store = model.store();
  store.upload_held(read_ranges(f, "/model", table, store.held_ranges()).data());
  if (!opt) return;
  const std::vector<FlatRange> shard = opt->layout().ranges();
  opt->upload(Optimizer::State::Master, read_ranges(f, "/model", table, shard));
  if (moments && opt->has_moments() && f.exists("/optim/exp_avg")) {
    opt->upload(Optimizer::State::Moment1, read_ranges(f, "/optim/exp_avg", table, shard));
    opt->upload(Optimizer::State::Moment2, read_ranges(f, "/optim/exp_avg_sq", table, shard));
    opt->set_t(f.attr_i64("/train", "optim_t"));
  } else {
    opt->reset_moments();
  }
}

void load_model_weights(Llama& model, Ops& ops, const std::string& path) {
  read_checkpoint_meta_local(path);
  load_checkpoint(path, model, ops, nullptr, false);
}

}  // namespace lct
