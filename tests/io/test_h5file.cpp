// H5File's string attributes as other writers store them: h5py writes str attributes as
// variable-length UTF-8 strings (tools/grow_layers.py had to store bytes to be read at all), and
// fixed-length UTF-8 strings; both read back, non-ASCII text included.
#include <gtest/gtest.h>

#include <hdf5.h>

#include <string>

#include "io/h5file.h"
#include "test_util.h"

namespace lct {
namespace {

void write_string_attr(const std::string& path, const char* name, const std::string& text, bool variable) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, variable ? H5T_VARIABLE : text.size());
  H5Tset_cset(type, H5T_CSET_UTF8);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  const char* c = text.c_str();
  if (variable) H5Awrite(a, type, &c);
  else H5Awrite(a, type, c);
  H5Aclose(a), H5Sclose(space), H5Tclose(type), H5Fclose(f);
}

TEST(H5File, ReadsUtf8StringAttributes) {
  const std::string path = test::scratch_dir("h5file_utf8") + "/a.h5";
  { H5File created(path, H5File::Create); }
  const std::string json = "{\"name\": \"d\u00e9j\u00e0 vu\", \"dim\": 32}";
  write_string_attr(path, "model_config", json, true);
  write_string_attr(path, "fixed", "caf\u00e9", false);
  H5File f(path, H5File::Read);
  EXPECT_EQ(f.attr_str("/", "model_config"), json);
  EXPECT_EQ(f.attr_str("/", "fixed"), "caf\u00e9");
}

}  // namespace
}  // namespace lct
