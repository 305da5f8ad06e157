// SPDX-License-Identifier: MIT
// Benchmark helper: times HQQ (4-bit, g64, axis 1, 20 iterations), NF4 + double quant and RTN int4 g128 on a
// synthetic 4096 x 11008 N(0, 0.02) matrix (one Llama-7B MLP projection).
//   hqq_bench [n_threads] [n_rows] [n_cols]
#include "core/thread_pool.h"
#include "quantize/hqq/hqq_solver.h"
#include "scheme/int_group/int_group.h"
#include "scheme/nf4/nf4.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace {

template <class F> void timed(const char* what, F&& f) {
    const std::clock_t c0 = std::clock();
    const auto t0 = std::chrono::steady_clock::now();
    const bool ok = f();
    const auto t1 = std::chrono::steady_clock::now();
    const std::clock_t c1 = std::clock();
    std::printf("%-28s %9.1f ms wall %9.1f ms CPU %s\n", what,
                std::chrono::duration<double, std::milli>(t1 - t0).count(), 1000.0 * double(c1 - c0) / CLOCKS_PER_SEC,
                ok ? "" : "FAILED");
}

} // namespace

int main(int argc, char** argv) {
    const int n_threads = argc > 1 ? std::stoi(argv[1]) : 0;
    const int64_t n = argc > 2 ? std::stoll(argv[2]) : 4096, k = argc > 3 ? std::stoll(argv[3]) : 11008;
    lowbit::ThreadPool::set_default_threads(n_threads);
    std::vector<float> w(static_cast<size_t>(n * k));
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.0f, 0.02f);
    for (float& x : w) x = d(rng);
    std::printf("matrix %lld x %lld, %d threads\n", (long long)n, (long long)k,
                lowbit::ThreadPool::global().n_threads());
    timed("hqq 4-bit g64 (solver)", [&] {
        auto r = lowbit::quantize::hqq::quantize_hqq(w.data(), lowbit::Shape{n, k}, lowbit::scheme::hqq::HqqParams{},
                                                     lowbit::quantize::hqq::HqqOptions{});
        if (r.ok()) std::printf("  (%zu iterations)\n", r->errors.size());
        return r.ok();
    });
    timed("nf4 b64 + double quant", [&] {
        return lowbit::scheme::nf4::quantize(w.data(), lowbit::Shape{n, k}, lowbit::scheme::nf4::Nf4Params{}).ok();
    });
    timed("rtn int4 g128 asym", [&] {
        return lowbit::scheme::int_group::quantize_rtn(w.data(), n, k, lowbit::scheme::int_group::IntGroupParams{})
            .ok();
    });
    return 0;
}
