#include "core/text_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "core/error.h"

namespace lct {

void write_text_file_atomically(const std::string& path, const std::string& text, const std::string& hint) {
  const std::string tmp = path + ".tmp";
  const std::string why = hint.empty() ? std::string() : str(" (", hint, ")");
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    f.close();
    if (!f) throw Error(kExitFailure, str("cannot write ", tmp, why));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error(kExitFailure, str("cannot rename ", tmp, " to ", path, ": ", ec.message(), why));
}

std::string read_text_input(const std::string& path, const std::string& key, bool allow_empty) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(str(key, ": '", path, "' is a directory; give a text file"));
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(str(key, ": cannot read '", path, "' (no such file, or not readable)"));
  std::stringstream s;
  s << f.rdbuf();
  if (f.bad()) throw InputError(str(key, ": reading '", path, "' failed"));
  std::string text = s.str();
  if (!allow_empty && text.find_first_not_of(" \t\r\n\f\v") == std::string::npos)
    throw InputError(str(key, ": '", path, "' is empty (or only white space); give a file with text"));
  return text;
}

}  // namespace lct
