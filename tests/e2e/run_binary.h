// SPDX-License-Identifier: MIT
// run_lowbit(args): spawns the built `lowbit` binary, returns its exit code, stdout and stderr.
// Used by the e2e tests to assert messages and exit codes (and that no signal killed it); tiny_ppl, the quick
// perplexity check of the suites.
#pragma once

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace lowbit::e2e {

struct RunResult {
    int exit_code = -1; // -1 if killed by a signal
    int signal = 0;
    std::string out, err;
};

inline std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

inline std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

inline std::string lowbit_binary() {
    return std::string(LOWBIT_BINARY_DIR) + "/lowbit";
}

// Runs `lowbit args...` with stdin from /dev/null (or `stdin_file`), capturing both streams to temp files.
inline RunResult run_lowbit(const std::vector<std::string>& args, const std::string& stdin_file = "/dev/null") {
    static int counter = 0;
    const std::string base =
        ::testing::TempDir() + "/lowbit_e2e_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    std::string cmd = shell_quote(lowbit_binary());
    for (const auto& a : args) cmd.append(" ").append(shell_quote(a)); // append: avoids GCC 12 -Wrestrict bug 105651
    cmd += " <" + shell_quote(stdin_file) + " >" + base + ".out 2>" + base + ".err";
    const int status = std::system(cmd.c_str());
    RunResult r;
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    // std::system runs /bin/sh: a child killed by a signal shows as exit code 128+sig.
    if (r.exit_code > 128) r.signal = r.exit_code - 128;
    r.out = slurp(base + ".out");
    r.err = slurp(base + ".err");
    std::remove((base + ".out").c_str());
    std::remove((base + ".err").c_str());
    return r;
}

// A `--device cuda` run that did not succeed must fail clearly, never fall back to the CPU: exit 4 and "built
// without CUDA" + the --device cpu hint on a CPU-only build, exit 1 and "--device cuda: no ..." on a CUDA build
// without a usable GPU; and it writes no model into `out_dir`.
inline void expect_clear_cuda_failure(const RunResult& r, const std::string& out_dir) {
    if (r.exit_code == 4) {
        EXPECT_NE(r.err.find("lowbit: error: --device cuda: this lowbit was built without CUDA"), std::string::npos)
            << r.err;
        EXPECT_NE(r.err.find("--device cpu"), std::string::npos) << r.err; // says what to do instead
    } else {
        EXPECT_EQ(r.exit_code, 1) << r.err; // CUDA build, no usable device: a device error, not a CPU run
        EXPECT_NE(r.err.find("lowbit: error: --device cuda: no"), std::string::npos) << r.err;
    }
    EXPECT_FALSE(std::ifstream(out_dir + "/model.safetensors").good());
}

// `lowbit perplexity -m model -f text -c 64 --chunks N --json -t 2`: the PPL, or -1 after an EXPECT failure
// naming the model (the quick quality check of the e2e suites).
inline double tiny_ppl(const std::string& model, const std::string& text, int chunks) {
    auto r = run_lowbit(
        {"perplexity", "-m", model, "-f", text, "-c", "64", "--chunks", std::to_string(chunks), "--json", "-t", "2"});
    EXPECT_EQ(r.exit_code, 0) << model << ": " << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out)["ppl"].get<double>() : -1.0;
}

} // namespace lowbit::e2e
