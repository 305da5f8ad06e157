// SPDX-License-Identifier: MIT
// Fixtures for e2e tests: a per-process temp folder and seeded tiny HF models written by
// tests/fixtures/make_tiny_llama.py (needs python3 with numpy + tokenizers; tests skip when it is missing).
#pragma once

#include "e2e/run_binary.h"

#include <cstdlib>
#include <string>
#include <unistd.h>

namespace lowbit::e2e {

// "<TempDir>/lowbit_<name>_<pid>/", created empty.
inline std::string make_test_dir(const std::string& name) {
    const std::string dir = ::testing::TempDir() + "/lowbit_" + name + "_" + std::to_string(::getpid()) + "/";
    std::system(("rm -rf " + shell_quote(dir) + " && mkdir -p " + shell_quote(dir)).c_str());
    return dir;
}

inline void remove_test_dir(const std::string& dir) {
    std::system(("rm -rf " + shell_quote(dir)).c_str());
}

// Whether the fixture generator can run here.
inline bool tiny_model_available() {
    return std::system("python3 -c 'import numpy, tokenizers' >/dev/null 2>&1") == 0;
}

// Writes a tiny model to `out_dir` (`args`: make_tiny_llama.py flags, e.g. "--hidden 128 --tokenizer --seed 4").
inline bool make_tiny_model(const std::string& out_dir, const std::string& args) {
    const std::string script = shell_quote(std::string(LOWBIT_SOURCE_DIR) + "/tests/fixtures/make_tiny_llama.py");
    return std::system(("python3 " + script + " --out " + shell_quote(out_dir) + " " + args + " >/dev/null").c_str()) ==
           0;
}

} // namespace lowbit::e2e
