// SPDX-License-Identifier: MIT
// kernel_bench: CPU matmul on packed weights, old path (dequantize rows + f32 dot / OpenBLAS, cpu::matmul_dequant
// or cpu::matmul_f16) against the qdot path (cpu::matmul_qdot_at, integer dots on 8-bit activations), per dtype,
// for a 2048x2048 and a 5632x2048 weight at m = 1 (decode) and m = 128 (prefill). Prints ms per call, GB/s of
// weight bytes and new/old speed. Not a test: timings on a shared machine are noisy; compare within one run.
// Usage: kernel_bench [--threads 2] [--min-ms 300] [--m 1,128] [--shapes 2048x2048,5632x2048] [--dtypes q4_0,q4_k,...]
// [--level scalar|avx2|avx512]
#include "kernel/cpu/cpu_ops.h"
#include "kernel/cpu/qdot/qdot.h"
#include "scheme/scheme_list.h"

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace lowbit;
using Clock = std::chrono::steady_clock;

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string t; std::getline(ss, t, ',');) out.push_back(t);
    return out;
}

// Weight bytes [n, k]: 64 distinct quantized rows repeated (the values do not change the timing).
std::vector<uint8_t> make_weight(const scheme::SchemeTraits& s, int64_t n, int64_t k) {
    const uint64_t row_bytes = *dtype_row_bytes(s.dtype, uint64_t(k));
    const int64_t n_distinct = 64;
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    std::vector<float> f(static_cast<size_t>(k));
    std::vector<uint8_t> bytes(row_bytes * uint64_t(n));
    for (int64_t r = 0; r < n; ++r) {
        uint8_t* dst = bytes.data() + uint64_t(r) * row_bytes;
        if (r < n_distinct) {
            for (auto& v : f) v = dist(rng);
            s.quantize_row(f.data(), dst, k, nullptr);
        } else {
            std::memcpy(dst, bytes.data() + uint64_t(r % n_distinct) * row_bytes, row_bytes);
        }
    }
    return bytes;
}

// Median-free and simple: the best of repeated calls until min_ms has passed (at least 3 calls).
double time_ms(const std::function<void()>& fn, double min_ms) {
    fn(); // warm-up (page faults, thread start)
    double best = 1e30, total = 0;
    for (int it = 0; it < 3 || total < min_ms; ++it) {
        const auto t0 = Clock::now();
        fn();
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        best = std::min(best, ms), total += ms;
    }
    return best;
}

} // namespace

int main(int argc, char** argv) {
    int n_threads = 2;
    double min_ms = 300;
    std::vector<std::string> dtypes = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k",
                                       "q3_k", "q4_k", "q5_k", "q6_k", "f16",  "bf16"};
    std::vector<int64_t> ms = {1, 128};
    std::vector<std::array<int64_t, 2>> shapes = {{2048, 2048}, {5632, 2048}};
    kernel::cpu::qdot::Level level = kernel::cpu::qdot::active_level();
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--threads") {
            n_threads = std::atoi(v.c_str());
        } else if (a == "--min-ms") {
            min_ms = std::atof(v.c_str());
        } else if (a == "--dtypes") {
            dtypes = split(v);
        } else if (a == "--m") {
            ms.clear();
            for (const auto& t : split(v)) ms.push_back(std::atoll(t.c_str()));
        } else if (a == "--shapes") { // NxK,NxK,...
            shapes.clear();
            for (const auto& t : split(v)) {
                const auto x = t.find('x');
                shapes.push_back({std::atoll(t.substr(0, x).c_str()), std::atoll(t.substr(x + 1).c_str())});
            }
        } else if (a == "--level") {
            level = kernel::cpu::qdot::resolve_level(v.c_str());
        } else {
            std::fprintf(stderr, "kernel_bench: unknown flag %s\n", a.c_str());
            return 2;
        }
    }
    ThreadPool pool(n_threads);
    kernel::set_blas_threads(n_threads);
    std::printf("level %s, %d threads\n", kernel::cpu::qdot::level_name(level), n_threads);
    std::printf("%-5s %-10s %4s %10s %10s %9s %9s %7s\n", "dtype", "N x K", "m", "old ms", "new ms", "old GB/s",
                "new GB/s", "new/old");
    for (const auto& name : dtypes) {
        const auto dt = dtype_from_name(name);
        const auto* s = dt ? scheme::find_scheme(*dt) : nullptr;
        if (!s || !s->quantize_row) {
            std::fprintf(stderr, "kernel_bench: no scheme row for %s\n", name.c_str());
            return 2;
        }
        for (const auto& shape : shapes) {
            const int64_t n = shape[0], k = shape[1];
            const auto bytes = make_weight(*s, n, k);
            const auto w = kernel::make_weight(bytes.data(), s->dtype, n, k);
            for (int64_t m : ms) {
                std::vector<float> x(size_t(m * k), 0.5f), y(size_t(m * n));
                for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i * 7919 % 1000) - 500) / 500.0f;
                const double old_ms = time_ms(
                    [&] {
                        if (s->dtype == DType::kF16)
                            kernel::cpu::matmul_f16(x.data(), m, w, nullptr, y.data(), &pool);
                        else
                            kernel::cpu::matmul_dequant(x.data(), m, w, nullptr, y.data(), &pool);
                    },
                    min_ms);
                const double new_ms = time_ms(
                    [&] { kernel::cpu::matmul_qdot_at(level, x.data(), m, w, nullptr, y.data(), &pool); }, min_ms);
                const double gb = double(bytes.size()) / 1e9;
                std::printf("%-5s %4lldx%-5lld %4lld %10.3f %10.3f %9.2f %9.2f %7.2f\n", name.c_str(), (long long)n,
                            (long long)k, (long long)m, old_ms, new_ms, gb / (old_ms / 1e3), gb / (new_ms / 1e3),
                            old_ms / new_ms);
                std::fflush(stdout);
            }
        }
    }
    return 0;
}
