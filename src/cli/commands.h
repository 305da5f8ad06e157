// SPDX-License-Identifier: MIT
// The command table of the `lowbit` binary. Adding a command = one cmd_<name>.cpp that defines a
// setup function, plus one row in commands.cpp. Exit codes: 0 ok, 1 other, 2 usage, 3 bad input,
// 4 unsupported (core/error.h). Errors print "lowbit: error: <message>" on stderr.
#pragma once

#include "core/dtype.h"
#include "core/error.h"

#include <CLI/CLI.hpp>
#include <functional>

namespace lowbit::cli {

// A setup function adds the command's flags to `sub` and returns the action to run after parsing.
using CommandAction = std::function<Status()>;
using CommandSetup = CommandAction (*)(CLI::App& sub);

struct Command {
    const char* name;
    const char* help;
    CommandSetup setup;
};

int run_main(int argc, char** argv);

// Shared flag helpers.
void add_threads_flag(CLI::App& sub, int& n_threads); // -t/--threads, default = cores
// --cache-type f16|f32|q8_0 (KV cache rows; default f16 as llama.cpp's), parsed by cache_type_of.
void add_cache_type_flag(CLI::App& sub, std::string& cache_type);
Result<DType> cache_type_of(const std::string& cache_type);

} // namespace lowbit::cli
