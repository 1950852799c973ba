// The lctrain command line: lctrain [mode] DECK [--section.key=value ...]
#pragma once

namespace lct {

// The whole program; returns the process exit code (docs/exit-codes.md).
int lctrain_main(int argc, char** argv);

}  // namespace lct
