// SPDX-License-Identifier: MIT
// The `lowbit` binary: hands argv to the command table (cli/commands.h).
#include "cli/commands.h"

int main(int argc, char** argv) {
    return lowbit::cli::run_main(argc, argv);
}
