// SPDX-License-Identifier: MIT
// The `lowbit` binary: hands argv to the command table (cli/commands.h). Library code reports errors as
// Result/Status; anything that still throws (an allocation failing, a bug) ends here as a message and exit 1,
// never an abort.
#include "cli/commands.h"

#include <cstdio>
#include <exception>
#include <new>

int main(int argc, char** argv) {
    try {
        return lowbit::cli::run_main(argc, argv);
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "lowbit: error: out of memory (an allocation failed; lower -c, the batch size or the "
                             "model size)\n");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lowbit: error: internal error: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "lowbit: error: internal error (unknown exception)\n");
    }
    return 1;
}
