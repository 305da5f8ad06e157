// SPDX-License-Identifier: MIT
// bench: llama-bench's measurements on a lowbit Session. Prompt processing (pp N): N tokens evaluated from an
// empty cache in batches of n_batch; token generation (tg N): N tokens evaluated one at a time from an empty
// cache (as llama-bench: the sampled token is not fed back; ids are random). Each test runs once to warm up,
// then `repetitions` times; throughput is reported as mean ± sample standard deviation of tokens/s.
// Cost: (1 + repetitions) × (sum of tests) forward tokens. Not thread-safe (one session).
#pragma once

#include "core/error.h"
#include "runtime/session.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lowbit::pipeline {

struct BenchOptions {
    std::string model;
    std::vector<int64_t> n_prompt = {512}; // pp tests (0 entries are skipped)
    std::vector<int64_t> n_gen = {128};    // tg tests
    int n_threads = 0;
    int repetitions = 5;
    int64_t n_batch = 512;
    DType cache_type = DType::kF16;
    runtime::Device device = runtime::Device::kCpu;
    int64_t n_seq = 1; // tg: sequences decoded together (one token each per step); t/s counts all of them
};

struct BenchResult {
    int64_t n_prompt = 0, n_gen = 0; // one of them is 0
    std::vector<double> samples_ns;  // wall time of each repetition
    double avg_ts = 0, stddev_ts = 0;
    double avg_ns = 0, stddev_ns = 0;
    std::string test_name() const; // "pp512" / "tg128"
};

struct BenchReport {
    std::string model_path, model_type; // e.g. "llama 30M Q4_K - Medium"-like: arch, size, dominant weight type
    uint64_t model_bytes = 0;
    int64_t n_params = 0;
    int n_threads = 0;
    int64_t n_batch = 0, n_seq = 1;
    std::string cache_type, backend, cpu_info, gpu_info; // backend: "CPU" | "CUDA" (llama-bench)
    uint64_t kv_cache_bytes = 0;
    uint64_t peak_rss_bytes = 0; // of this process after all tests (VmHWM)
    std::vector<BenchResult> results;
};

// Errors: kUsage (no test, a size < 0, repetitions < 1, n_batch < 1, a test longer than the context the model
// allows), those of Session::open. `on_result` (may be empty) sees each result as it completes.
Result<BenchReport> run_bench(const BenchOptions& o,
                              const std::function<void(const BenchReport&, const BenchResult&)>& on_result = {});

// llama-bench's markdown table (header + one row per result) and its JSONL (one object per result, llama-bench's
// field names plus peak_rss_bytes and kv_cache_bytes).
std::string bench_markdown_header();
std::string bench_markdown_row(const BenchReport& r, const BenchResult& x);
std::string bench_json_line(const BenchReport& r, const BenchResult& x);

} // namespace lowbit::pipeline
