// A thin RAII layer over the HDF5 C API for the files lctrain reads and writes (reference data,
// native token files, checkpoints): open/create, datasets of any rank read/written whole or by
// hyperslab, attributes. Errors are InputErrors naming the file and the object.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <hdf5.h>

namespace lct {

class H5File {
 public:
  enum Mode { Read, Create /* truncate */, ReadWrite };
  // fapl: a file-access property list (e.g. MPI-IO); H5P_DEFAULT for serial access.
  H5File(const std::string& path, Mode mode, hid_t fapl = H5P_DEFAULT);
  // Adopts an already open file id (closed by the destructor).
  H5File(hid_t open_file, const std::string& path) : id_(open_file), path_(path) {}
  ~H5File();
  // Closes the file now (collective for an MPI-IO file) and says whether HDF5 could flush and close
  // it: a full disk shows here. The destructor closes a file still open but cannot report.
  bool close();
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;
  H5File(H5File&& o) noexcept;

  hid_t id() const { return id_; }
  const std::string& path() const { return path_; }
  bool exists(const std::string& name) const;  // a link (dataset or group) at this path
  std::vector<int64_t> shape(const std::string& dataset) const;
  // Lists the member names of a group ("/" for the root).
  std::vector<std::string> list(const std::string& group) const;

  // Whole-dataset reads, converted to the requested type.
  std::vector<double> read_f64(const std::string& dataset) const;
  std::vector<float> read_f32(const std::string& dataset) const;
  std::vector<int32_t> read_i32(const std::string& dataset) const;
  std::vector<int64_t> read_i64(const std::string& dataset) const;
  // A whole float dataset of exactly `count` elements into caller memory (InputError otherwise).
  void read_f32_into(const std::string& dataset, float* out, size_t count) const;

  // Attributes on an object ("/" for the file).
  bool has_attr(const std::string& obj, const std::string& name) const;
  double attr_f64(const std::string& obj, const std::string& name) const;
  int64_t attr_i64(const std::string& obj, const std::string& name) const;
  std::string attr_str(const std::string& obj, const std::string& name) const;
  void set_attr(const std::string& obj, const std::string& name, double v);
  void set_attr(const std::string& obj, const std::string& name, int64_t v);
  void set_attr(const std::string& obj, const std::string& name, const std::string& v);

  // Creates groups along the path as needed.
  void make_groups(const std::string& path);

 private:
  hid_t id_ = -1;
  std::string path_;
};

// Silences HDF5's automatic error-stack printing (we report errors ourselves); idempotent.
void h5_quiet();

}  // namespace lct
