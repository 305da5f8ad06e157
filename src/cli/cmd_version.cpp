// SPDX-License-Identifier: MIT
// `lowbit version`: version and build configuration.
#include "cli/commands.h"

#include <cstdio>

namespace lowbit::cli {

CommandAction setup_version(CLI::App& sub) {
    return [] {
#ifdef LOWBIT_HAVE_CUDA
        const char* cuda = "yes";
#else
        const char* cuda = "no";
#endif
        std::printf("lowbit %s\ncuda: %s\n", LOWBIT_VERSION_STRING, cuda);
        return ok_status();
    };
}

} // namespace lowbit::cli
