// SPDX-License-Identifier: MIT
// `lowbit bench -m MODEL [-p 512] [-n 128] [-t N] [-r 5] [-b 512] [--cache-type f16] [--device cpu|cuda|auto | -ngl N]
// [--json]`: llama-bench's prompt-processing (pp) and token-generation (tg) throughput, mean ± sd over repetitions
// after one warm-up. -p and -n take comma lists (llama-bench: `-p 128,512`). Output: llama-bench's markdown table, or
// with --json one JSON object per line with llama-bench's field names (n_prompt, n_gen, n_threads, avg_ts, stddev_ts,
// model_size, model_n_params, ...) plus peak_rss_bytes and kv_cache_bytes. The peak RSS also goes to stderr.
#include "cli/commands.h"
#include "pipeline/bench/bench.h"

#include <cstdio>
#include <fmt/format.h>

namespace lowbit::cli {
namespace {

struct BenchArgs {
    pipeline::BenchOptions o;
    std::string cache_type;
    DeviceArgs device;
    bool json = false;
};

Status run_bench_cmd(BenchArgs a) {
    LOWBIT_ASSIGN_OR_RETURN(a.o.cache_type, cache_type_of(a.cache_type));
    LOWBIT_ASSIGN_OR_RETURN(a.o.device, device_of(a.device));
    if (!a.json) std::fputs(pipeline::bench_markdown_header().c_str(), stdout);
    auto print = [&](const pipeline::BenchReport& r, const pipeline::BenchResult& x) {
        const std::string line = a.json ? pipeline::bench_json_line(r, x) : pipeline::bench_markdown_row(r, x);
        std::fputs(line.c_str(), stdout);
        std::fflush(stdout);
    };
    LOWBIT_ASSIGN_OR_RETURN(const auto report, pipeline::run_bench(a.o, print));
    std::fprintf(stderr, "peak RSS %.1f MiB (weights %.1f MiB, KV cache %.1f MiB)\n",
                 double(report.peak_rss_bytes) / double(1 << 20), double(report.model_bytes) / double(1 << 20),
                 double(report.kv_cache_bytes) / double(1 << 20));
    return ok_status();
}

} // namespace

CommandAction setup_bench(CLI::App& sub) {
    auto a = std::make_shared<BenchArgs>();
    sub.add_option("-m,--model", a->o.model, "Hugging Face model folder or .gguf file")->required();
    sub.add_option("-p,--n-prompt", a->o.n_prompt, "Prompt tokens per pp test (comma list; 0: none)")
        ->delimiter(',')
        ->capture_default_str();
    sub.add_option("-n,--n-gen", a->o.n_gen, "Generated tokens per tg test (comma list; 0: none)")
        ->delimiter(',')
        ->capture_default_str();
    sub.add_option("-r,--repetitions", a->o.repetitions, "Timed repetitions of each test (after one warm-up)")
        ->capture_default_str();
    sub.add_option("-b,--batch-size", a->o.n_batch, "Prompt tokens per forward pass")->capture_default_str();
    sub.add_option("--n-seq", a->o.n_seq,
                   "tg: sequences decoded together, one token each per step (aggregate t/s over all of them)")
        ->capture_default_str();
    add_threads_flag(sub, a->o.n_threads);
    add_cache_type_flag(sub, a->cache_type);
    add_device_flag(sub, a->device);
    sub.add_flag("--json", a->json, "One JSON object per line (llama-bench's jsonl field names)");
    return [a] { return run_bench_cmd(*a); };
}

} // namespace lowbit::cli
