// SPDX-License-Identifier: MIT
// bench (see bench.h): llama-bench's pp/tg protocol on a Session, and its table / JSONL output.
#include "pipeline/bench/bench.h"

#include "core/log.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

namespace lowbit::pipeline {
namespace {

std::string cpu_model_name() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("model name", 0) == 0) {
            const size_t colon = line.find(':');
            if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
        }
    return "unknown CPU";
}

uint64_t peak_rss_bytes() {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmHWM:", 0) == 0) return uint64_t(std::stoull(line.substr(6))) * 1024;
    return 0;
}

// "30M", "1.1B": llama.cpp's model size label.
std::string params_label(int64_t n) {
    if (n >= 1'000'000'000) return fmt::format("{:.1f}B", double(n) / 1e9);
    return fmt::format("{}M", int64_t(std::llround(double(n) / 1e6)));
}

// One timed run of a test; the cache is cleared first. tg with n_seq > 1: each step decodes one token for every
// slot in one batch (continuous batching's decode step), so a test generates n_seq * n_gen tokens.
Result<double> time_test(runtime::Session& s, const std::vector<int32_t>& ids, int64_t n_prompt, int64_t n_gen,
                         int64_t n_seq) {
    std::vector<float> logits;
    for (int64_t q = 0; q < s.n_seq(); ++q) s.clear_slot(q);
    model::Batch batch;
    const auto t0 = std::chrono::steady_clock::now();
    if (n_prompt > 0) LOWBIT_TRY(s.eval(std::span(ids).first(size_t(n_prompt)), false, logits));
    for (int64_t i = 0; i < n_gen; ++i) {
        if (n_seq == 1) {
            LOWBIT_TRY(s.eval(std::span(ids).subspan(size_t(i), 1), false, logits));
            continue;
        }
        batch.clear();
        for (int64_t q = 0; q < n_seq; ++q)
            batch.add(ids[size_t((i + q) % int64_t(ids.size()))], int32_t(i), int32_t(q), true);
        LOWBIT_TRY(s.decode(batch, logits));
    }
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
}

double mean(const std::vector<double>& v) {
    return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}
double stddev(const std::vector<double>& v) {
    if (v.size() < 2) return 0.0;
    const double m = mean(v);
    double ss = 0;
    for (double x : v) ss += (x - m) * (x - m);
    return std::sqrt(ss / double(v.size() - 1));
}

} // namespace

std::string BenchResult::test_name() const {
    return n_prompt > 0 ? fmt::format("pp{}", n_prompt) : fmt::format("tg{}", n_gen);
}

Result<BenchReport> run_bench(const BenchOptions& o,
                              const std::function<void(const BenchReport&, const BenchResult&)>& on_result) {
    if (o.repetitions < 1) return make_error(ErrorCode::kUsage, fmt::format("-r {} must be >= 1", o.repetitions));
    if (o.n_batch < 1) return make_error(ErrorCode::kUsage, fmt::format("-b {} must be >= 1", o.n_batch));
    if (o.n_seq < 1 || o.n_seq > 1024)
        return make_error(ErrorCode::kUsage, fmt::format("--n-seq {} must be in [1, 1024]", o.n_seq));
    std::vector<std::pair<int64_t, int64_t>> tests; // (n_prompt, n_gen)
    int64_t longest = 0;
    for (int64_t p : o.n_prompt) {
        if (p < 0) return make_error(ErrorCode::kUsage, fmt::format("-p {} must be >= 0", p));
        if (p > 0) tests.emplace_back(p, 0), longest = std::max(longest, p);
    }
    for (int64_t g : o.n_gen) {
        if (g < 0) return make_error(ErrorCode::kUsage, fmt::format("-n {} must be >= 0", g));
        if (g > 0) tests.emplace_back(0, g), longest = std::max(longest, g);
    }
    if (tests.empty()) return make_error(ErrorCode::kUsage, "bench needs at least one test (-p N or -n N above 0)");
    runtime::SessionOptions so;
    so.n_threads = o.n_threads;
    so.n_batch = o.n_batch;
    so.cache_type = o.cache_type;
    so.device = o.device;
    so.load_tokenizer = false;
    so.n_ctx = longest;
    so.n_seq = o.n_seq;
    LOWBIT_ASSIGN_OR_RETURN(auto session, runtime::Session::open(o.model, so));
    const auto& c = session->config();
    if (c.max_position_embeddings > 0 && longest > c.max_position_embeddings)
        log_warn("test of {} tokens is longer than the {} positions the model was trained on", longest,
                 c.max_position_embeddings);
    BenchReport r;
    r.model_path = o.model;
    r.model_type = fmt::format("{} {} {}", c.arch.empty() ? "llama" : c.arch, params_label(session->n_params()),
                               dtype_name(session->main_dtype()));
    r.model_bytes = session->model_bytes(), r.n_params = session->n_params();
    r.n_threads = session->pool().n_threads(), r.n_batch = o.n_batch, r.n_seq = o.n_seq;
    r.cache_type = std::string(dtype_name(o.cache_type));
    r.backend = session->backend_label(), r.cpu_info = cpu_model_name(), r.gpu_info = session->gpu_name();
    r.kv_cache_bytes = session->kv_cache().bytes();
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> pick(0, int32_t(c.vocab_size - 1));
    std::vector<int32_t> ids(static_cast<size_t>(longest));
    for (auto& id : ids) id = pick(rng);
    for (const auto& [n_prompt, n_gen] : tests) {
        BenchResult x;
        x.n_prompt = n_prompt, x.n_gen = n_gen;
        LOWBIT_TRY(time_test(*session, ids, n_prompt, n_gen, o.n_seq)); // warm-up
        for (int i = 0; i < o.repetitions; ++i) {
            LOWBIT_ASSIGN_OR_RETURN(const double ns, time_test(*session, ids, n_prompt, n_gen, o.n_seq));
            x.samples_ns.push_back(ns);
        }
        std::vector<double> ts;
        const int64_t n_tokens = n_prompt + n_gen * (n_gen > 0 ? o.n_seq : 1);
        for (double ns : x.samples_ns) ts.push_back(double(n_tokens) * 1e9 / ns);
        x.avg_ts = mean(ts), x.stddev_ts = stddev(ts), x.avg_ns = mean(x.samples_ns),
        x.stddev_ns = stddev(x.samples_ns);
        r.peak_rss_bytes = peak_rss_bytes();
        r.results.push_back(x);
        if (on_result) on_result(r, x);
    }
    return r;
}

std::string bench_markdown_header() {
    return "| model                          |       size |     params | backend    | threads | cache |            "
           "test "
           "|                  t/s |\n"
           "| ------------------------------ | ---------: | ---------: | ---------- | ------: | ----- | "
           "--------------: "
           "| -------------------: |\n";
}

std::string bench_markdown_row(const BenchReport& r, const BenchResult& x) {
    return fmt::format(
        "| {:<30} | {:>6.2f} MiB | {:>8.2f} M | {:<10} | {:>7} | {:<5} | {:>15} | {:>9.2f} ± {:>8.2f} |\n",
        r.model_type, double(r.model_bytes) / double(1 << 20), double(r.n_params) / 1e6, r.backend, r.n_threads,
        r.cache_type, x.test_name(), x.avg_ts, x.stddev_ts);
}

std::string bench_json_line(const BenchReport& r, const BenchResult& x) {
    nlohmann::json j;
    j["build_commit"] = "lowbit";
    j["cpu_info"] = r.cpu_info;
    j["gpu_info"] = r.gpu_info;
    j["backends"] = r.backend;
    j["model_filename"] = r.model_path;
    j["model_type"] = r.model_type;
    j["model_size"] = r.model_bytes;
    j["model_n_params"] = r.n_params;
    j["n_batch"] = r.n_batch;
    j["n_ubatch"] = r.n_batch;
    j["n_threads"] = r.n_threads;
    j["type_k"] = r.cache_type;
    j["type_v"] = r.cache_type;
    j["n_prompt"] = x.n_prompt;
    j["n_gen"] = x.n_gen;
    j["n_seq"] = r.n_seq;
    j["avg_ns"] = uint64_t(std::llround(x.avg_ns));
    j["stddev_ns"] = uint64_t(std::llround(x.stddev_ns));
    j["avg_ts"] = x.avg_ts;
    j["stddev_ts"] = x.stddev_ts;
    std::vector<uint64_t> ns;
    std::vector<double> ts;
    for (double s : x.samples_ns)
        ns.push_back(uint64_t(std::llround(s))), ts.push_back(double(x.n_prompt + x.n_gen) * 1e9 / s);
    j["samples_ns"] = ns;
    j["samples_ts"] = ts;
    j["peak_rss_bytes"] = r.peak_rss_bytes;
    j["kv_cache_bytes"] = r.kv_cache_bytes;
    return j.dump() + "\n";
}

} // namespace lowbit::pipeline
