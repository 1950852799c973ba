#include "io/h5file.h"

#include <cstring>

#include "core/error.h"

namespace lct {

void h5_quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace {


template <class T> hid_t mem_type();
template <> hid_t mem_type<double>() { return H5T_NATIVE_DOUBLE; }
template <> hid_t mem_type<float>() { return H5T_NATIVE_FLOAT; }
template <> hid_t mem_type<int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t mem_type<int64_t>() { return H5T_NATIVE_INT64; }

template <class T>
std::vector<T> read_all(const H5File& f, const std::string& name) {
  hid_t ds = H5Dopen2(f.id(), name.c_str(), H5P_DEFAULT);
  if (ds < 0) throw InputError(str(f.path(), ": no dataset '", name, "'"));
  hid_t sp = H5Dget_space(ds);
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  std::vector<T> out(size_t(n < 0 ? 0 : n));
  herr_t st = n > 0 ? H5Dread(ds, mem_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) : 0;
  H5Sclose(sp);
  H5Dclose(ds);
  if (st < 0) throw InputError(str(f.path(), ": cannot read dataset '", name, "' (corrupt file or wrong type)"));
  return out;
}

hid_t open_attr(const H5File& f, const std::string& obj, const std::string& name) {
  hid_t a = H5Aopen_by_name(f.id(), obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) throw InputError(str(f.path(), ": no attribute '", name, "' on '", obj, "'"));
  return a;
}

void write_attr(H5File& f, const std::string& obj, const std::string& name, hid_t type, const void* data) {
  if (H5Aexists_by_name(f.id(), obj.c_str(), name.c_str(), H5P_DEFAULT) > 0)
    H5Adelete_by_name(f.id(), obj.c_str(), name.c_str(), H5P_DEFAULT);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate_by_name(f.id(), obj.c_str(), name.c_str(), type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  herr_t st = a >= 0 ? H5Awrite(a, type, data) : -1;
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  if (st < 0) throw Error(kExitFailure, str(f.path(), ": cannot write attribute '", name, "' on '", obj, "'"));
}

}  // namespace

H5File::H5File(const std::string& path, Mode mode, hid_t fapl) : path_(path) {
  h5_quiet();
  if (mode == Create)
    id_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  else
    id_ = H5Fopen(path.c_str(), mode == Read ? H5F_ACC_RDONLY : H5F_ACC_RDWR, fapl);
  if (id_ < 0) {
    if (mode == Create) throw Error(kExitFailure, str("cannot create HDF5 file '", path, "'"));
    throw InputError(str("cannot open '", path, "' as an HDF5 file (missing, unreadable, truncated or not HDF5)"));
  }
}

H5File::~H5File() {
  if (id_ >= 0) H5Fclose(id_);
}

bool H5File::close() {
  if (id_ < 0) return true;
  const herr_t st = H5Fclose(id_);
  id_ = -1;  // not closed again by the destructor, whatever the outcome
  return st >= 0;
}

H5File::H5File(H5File&& o) noexcept : id_(o.id_), path_(std::move(o.path_)) { o.id_ = -1; }

bool H5File::exists(const std::string& name) const {
  // Check each prefix: H5Lexists fails on a missing intermediate group.
  size_t pos = 0;
  while ((pos = name.find('/', pos + 1)) != std::string::npos)
    if (H5Lexists(id_, name.substr(0, pos).c_str(), H5P_DEFAULT) <= 0) return false;
  return H5Lexists(id_, name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<int64_t> H5File::shape(const std::string& name) const {
  hid_t ds = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
  if (ds < 0) throw InputError(str(path_, ": no dataset '", name, "'"));
  hid_t sp = H5Dget_space(ds);
  int nd = H5Sget_simple_extent_ndims(sp);
  std::vector<hsize_t> dims(size_t(nd > 0 ? nd : 0));
  if (nd > 0) H5Sget_simple_extent_dims(sp, dims.data(), nullptr);
  H5Sclose(sp);
  H5Dclose(ds);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

std::vector<std::string> H5File::list(const std::string& group) const {
  std::vector<std::string> names;
  H5Literate_by_name(
      id_, group.c_str(), H5_INDEX_NAME, H5_ITER_INC, nullptr,
      [](hid_t, const char* name, const H5L_info_t*, void* op) -> herr_t {
        static_cast<std::vector<std::string>*>(op)->push_back(name);
        return 0;
      },
      &names, H5P_DEFAULT);
  return names;
}

std::vector<double> H5File::read_f64(const std::string& n) const { return read_all<double>(*this, n); }
std::vector<float> H5File::read_f32(const std::string& n) const { return read_all<float>(*this, n); }

void H5File::read_f32_into(const std::string& name, float* out, size_t count) const {
  hid_t ds = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
  if (ds < 0) throw InputError(str(path_, ": no dataset '", name, "'"));
  hid_t sp = H5Dget_space(ds);
  const hssize_t n = H5Sget_simple_extent_npoints(sp);
  H5Sclose(sp);
  if (n < 0 || size_t(n) != count) {
    H5Dclose(ds);
    throw InputError(str(path_, ": dataset '", name, "' has ", n, " elements, expected ", count));
  }
  const herr_t st = n > 0 ? H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) : 0;
  H5Dclose(ds);
  if (st < 0) throw InputError(str(path_, ": cannot read dataset '", name, "' (corrupt file or wrong type)"));
}
std::vector<int32_t> H5File::read_i32(const std::string& n) const { return read_all<int32_t>(*this, n); }
std::vector<int64_t> H5File::read_i64(const std::string& n) const { return read_all<int64_t>(*this, n); }

bool H5File::has_attr(const std::string& obj, const std::string& name) const {
  return H5Aexists_by_name(id_, obj.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

double H5File::attr_f64(const std::string& obj, const std::string& name) const {
  hid_t a = open_attr(*this, obj, name);
  double v = 0;
  herr_t st = H5Aread(a, H5T_NATIVE_DOUBLE, &v);
  H5Aclose(a);
  if (st < 0) throw InputError(str(path_, ": attribute '", name, "' on '", obj, "' is not numeric"));
  return v;
}

int64_t H5File::attr_i64(const std::string& obj, const std::string& name) const {
  hid_t a = open_attr(*this, obj, name);
  int64_t v = 0;
  herr_t st = H5Aread(a, H5T_NATIVE_INT64, &v);
  H5Aclose(a);
  if (st < 0) throw InputError(str(path_, ": attribute '", name, "' on '", obj, "' is not an integer"));
  return v;
}

std::string H5File::attr_str(const std::string& obj, const std::string& name) const {
  hid_t a = open_attr(*this, obj, name);
  hid_t ft = H5Aget_type(a);
  std::string out;
  herr_t st = -1;
  if (H5Tget_class(ft) == H5T_STRING) {
    if (H5Tis_variable_str(ft) > 0) {
      char* s = nullptr;
      hid_t mt = H5Tcopy(H5T_C_S1);
      H5Tset_size(mt, H5T_VARIABLE);
      H5Tset_cset(mt, H5Tget_cset(ft));  // HDF5 converts no character set (h5py writes UTF-8)
      st = H5Aread(a, mt, &s);
      if (st >= 0 && s) out = s;
      if (s) H5free_memory(s);
      H5Tclose(mt);
    } else {
      size_t n = H5Tget_size(ft);  // fixed length, maybe not NUL-terminated: read into n + 1 with a NUL
      std::vector<char> buf(n + 2, '\0');
      hid_t mt = H5Tcopy(H5T_C_S1);
      H5Tset_size(mt, n + 1);
      H5Tset_cset(mt, H5Tget_cset(ft));
      st = H5Aread(a, mt, buf.data());
      H5Tclose(mt);
      out.assign(buf.data(), strnlen(buf.data(), n));
    }
  }
  H5Tclose(ft);
  H5Aclose(a);
  if (st < 0) throw InputError(str(path_, ": attribute '", name, "' on '", obj, "' is not a string"));
  return out;
}

void H5File::set_attr(const std::string& obj, const std::string& name, double v) {
  write_attr(*this, obj, name, H5T_NATIVE_DOUBLE, &v);
}
void H5File::set_attr(const std::string& obj, const std::string& name, int64_t v) {
  write_attr(*this, obj, name, H5T_NATIVE_INT64, &v);
}
void H5File::set_attr(const std::string& obj, const std::string& name, const std::string& v) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, v.empty() ? 1 : v.size());
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  std::string padded = v.empty() ? std::string(1, '\0') : v;
  write_attr(*this, obj, name, t, padded.data());
  H5Tclose(t);
}

void H5File::make_groups(const std::string& path) {
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    std::string prefix = path.substr(0, pos);
    if (prefix.empty() || prefix == "/") continue;
    if (H5Lexists(id_, prefix.c_str(), H5P_DEFAULT) <= 0) {
      hid_t g = H5Gcreate2(id_, prefix.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      if (g < 0) throw Error(kExitFailure, str(path_, ": cannot create group '", prefix, "'"));
      H5Gclose(g);
    }
  }
}

}  // namespace lct
