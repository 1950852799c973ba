#include "core/error.h"

namespace lct {

void internal_error(const char* file, int line, const std::string& msg) {
  throw Error(kExitFailure, str("internal error at ", file, ":", line, ": ", msg));
}

}  // namespace lct
