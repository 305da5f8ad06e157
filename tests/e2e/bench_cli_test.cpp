// SPDX-License-Identifier: MIT
// `lowbit bench` end to end on the bundled reference model: llama-bench's table, its JSONL field names with
// consistent values (samples, mean, threads, sizes, peak RSS), comma lists of tests, and bad flags as usage
// errors (exit 2) with a message, before any model work.
// GCC 12 at -O3 reports a false -Wrestrict inside std::string operator+ as inlined in run_binary.h (GCC PR105329).
#pragma GCC diagnostic ignored "-Wrestrict"
// clang-format off
#include <gtest/gtest.h>  // before run_binary.h, which uses ::testing
#include "e2e/run_binary.h"
// clang-format on

#include <nlohmann/json.hpp>
#include <sstream>

namespace lowbit::e2e {
namespace {

const std::string kModel = std::string(LOWBIT_SOURCE_DIR) + "/models/lowbit-ref-30m";

TEST(BenchCli, TableHasOneRowPerTest) {
    const auto r = run_lowbit({"bench", "-m", kModel, "-p", "16", "-n", "4", "-r", "2", "-t", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("| model"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("pp16"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("tg4"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("| CPU"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("peak RSS"), std::string::npos) << r.err;
}

TEST(BenchCli, JsonLinesCarryLlamaBenchFields) {
    const auto r = run_lowbit(
        {"bench", "-m", kModel, "-p", "8,16", "-n", "3", "-r", "3", "-t", "1", "--json", "--cache-type", "f32"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream in(r.out);
    std::vector<nlohmann::json> rows;
    for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
    ASSERT_EQ(rows.size(), 3u) << r.out;
    const int64_t want_prompt[] = {8, 16, 0}, want_gen[] = {0, 0, 3};
    for (size_t i = 0; i < rows.size(); ++i) {
        const auto& j = rows[i];
        for (const char* key : {"n_prompt", "n_gen", "n_threads", "avg_ts", "stddev_ts", "model_size", "model_n_params",
                                "samples_ns", "samples_ts", "avg_ns", "type_k", "peak_rss_bytes"})
            EXPECT_TRUE(j.contains(key)) << key;
        EXPECT_EQ(j["n_prompt"].get<int64_t>(), want_prompt[i]);
        EXPECT_EQ(j["n_gen"].get<int64_t>(), want_gen[i]);
        EXPECT_EQ(j["n_threads"].get<int>(), 1);
        EXPECT_EQ(j["type_k"].get<std::string>(), "f32");
        EXPECT_EQ(j["samples_ns"].size(), 3u);
        EXPECT_GT(j["avg_ts"].get<double>(), 0.0);
        double mean = 0;
        for (const auto& t : j["samples_ts"]) mean += t.get<double>() / 3.0;
        EXPECT_NEAR(j["avg_ts"].get<double>(), mean, 1e-6 * mean);
        EXPECT_GT(j["model_n_params"].get<int64_t>(), 20'000'000); // the 29.6 M reference model
        EXPECT_GT(j["model_size"].get<uint64_t>(), 50'000'000u);
        EXPECT_GE(j["peak_rss_bytes"].get<uint64_t>(), j["kv_cache_bytes"].get<uint64_t>());
    }
}

TEST(BenchCli, BadFlagsAreUsageErrors) {
    struct Case {
        std::vector<std::string> args;
        const char* message;
    };
    const std::vector<Case> cases = {
        {{"-r", "0"}, "-r 0 must be >= 1"},   {{"-p", "0", "-n", "0"}, "at least one test"},
        {{"-p", "-4"}, "-p -4 must be >= 0"}, {{"--cache-type", "q4_0"}, "--cache-type 'q4_0'"},
        {{"-b", "0"}, "-b 0 must be >= 1"},   {{"--device", "gpu"}, "--device 'gpu' is not one of cpu, cuda, auto"},
        {{"--device", "cpu", "-ngl", "99"}, "--device cpu contradicts -ngl 99"},
        {{"-ngl", "-3"}, "-ngl/--n-gpu-layers must be >= 0"}, {{"--n-seq", "0"}, "--n-seq 0 must be in [1, 1024]"},
    };
    for (const auto& c : cases) {
        std::vector<std::string> args = {"bench", "-m", kModel};
        args.insert(args.end(), c.args.begin(), c.args.end());
        const auto r = run_lowbit(args);
        EXPECT_EQ(r.exit_code, 2) << c.message << "\n" << r.err;
        EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("lowbit: error:"), std::string::npos) << r.err;
    }
    const auto missing = run_lowbit({"bench", "-m", "/nonexistent/model.gguf", "-p", "8", "-n", "0"});
    EXPECT_NE(missing.exit_code, 0);
    EXPECT_NE(missing.err.find("/nonexistent/model.gguf"), std::string::npos) << missing.err;
}

// Aggregate decode of several sequences: one batch per step, tokens/s over all of them.
TEST(BenchCli, SeveralSequencesDecodeTogether) {
    const auto r = run_lowbit({"bench", "-m", kModel, "-p", "0", "-n", "4", "-r", "1", "-t", "2", "--n-seq", "3",
                               "--json", "-ngl", "0"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
    EXPECT_EQ(j["n_seq"], 3);
    EXPECT_EQ(j["n_gen"], 4);
    EXPECT_EQ(j["backends"], "CPU");
    EXPECT_GT(j["avg_ts"].get<double>(), 0.0);
}

// --device cuda never falls back silently: without CUDA in the build exit 4, without a device exit 1 (the GPU
// machine's own run of this test, where it succeeds, is covered by the gpu label instead).
TEST(BenchCli, DeviceCudaWithoutAGpuIsAnError) {
    const auto r = run_lowbit({"bench", "-m", kModel, "-p", "8", "-n", "0", "-r", "1", "--device", "cuda"});
    if (r.exit_code == 0) GTEST_SKIP() << "a usable CUDA device is present";
    EXPECT_TRUE(r.exit_code == 4 || r.exit_code == 1) << r.exit_code << r.err;
    EXPECT_NE(r.err.find("CUDA"), std::string::npos) << r.err;
    const auto ngl = run_lowbit({"bench", "-m", kModel, "-p", "8", "-n", "0", "-r", "1", "-ngl", "99"});
    EXPECT_EQ(ngl.exit_code, r.exit_code) << ngl.err;
    const auto autod = run_lowbit({"bench", "-m", kModel, "-p", "8", "-n", "0", "-r", "1", "--device", "auto"});
    EXPECT_EQ(autod.exit_code, 0) << autod.err;
    EXPECT_NE(autod.out.find("| CPU"), std::string::npos) << autod.out;
}

} // namespace
} // namespace lowbit::e2e
