#include "core/text_file.h"

#include <filesystem>
#include <fstream>
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

}  // namespace lct
