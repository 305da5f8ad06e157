// SPDX-License-Identifier: MIT
// The command table of the `lowbit` binary. Adding a command = one cmd_<name>.cpp that defines a
// setup function, plus one row in commands.cpp. Exit codes: 0 ok, 1 other, 2 usage, 3 bad input,
// 4 unsupported (core/error.h). Errors print "lowbit: error: <message>" on stderr.
#pragma once

#include "core/dtype.h"
#include "core/error.h"
#include "runtime/session.h"

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
// --device cpu|cuda|auto and llama.cpp's -ngl/--n-gpu-layers N (run_main rewrites -ngl) (N > 0: the whole model on the
// GPU, as -ngl 99; lowbit has no partial offload; 0: cpu). device_of resolves them (kUsage when they contradict each
// other).
struct DeviceArgs {
    std::string device;        // empty: not given
    int64_t n_gpu_layers = -1; // -1: not given
};
void add_device_flag(CLI::App& sub, DeviceArgs& d);
Result<runtime::Device> device_of(const DeviceArgs& d);

} // namespace lowbit::cli
