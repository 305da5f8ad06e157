// SPDX-License-Identifier: MIT
// Benchmark helper (not a test).
//   hqq_bench [n_threads] [n_rows] [n_cols]
//       HQQ (4-bit, g64, axis 1, 20 iterations), NF4 + double quant and RTN int4 g128 on one synthetic
//       N(0, 0.02) matrix (default 4096 x 11008, one Llama-7B MLP projection).
//   hqq_bench 7b [--layers N] [--cpu-layers M] [--bits B] [--group G] [--threads T] [--no-cuda] [--pageable]
//       A synthetic Llama-2-7B-shaped model (N layers x {q,k,v,o 4096x4096; gate, up 11008x4096;
//       down 4096x11008}, bf16, heavy-tailed) through quantize_hqq_weights, the call `lowbit quantize
//       --method hqq` makes per Linear (records with packed codes included). CUDA runs all N layers, the CPU the
//       first M (extrapolated to N); layer 0 of both is compared byte for byte. Prints wall time, s/matrix and
//       the ratio to hqq's published ~0.03 s per 4096x11008 matrix on an H100 (docs/ANCHORS.md), and where the
//       CUDA time goes (--pageable: also time uploads straight from pageable memory).
//   hqq_bench quantize IN OUT DEVICE [BITS [GROUP]]
//       `lowbit quantize -m IN -o OUT --method hqq --device DEVICE` through the pipeline library.
#include "core/half.h"
#include "core/thread_pool.h"
#include "pipeline/quantize/quantize.h"
#include "quantize/hqq/hqq_algo.h"
#include "quantize/hqq/hqq_cuda_device.h"
#include "quantize/hqq/hqq_solver.h"
#include "scheme/int_group/int_group.h"
#include "scheme/nf4/nf4.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

template <class F> void timed(const char* what, F&& f) {
    const std::clock_t c0 = std::clock();
    const auto t0 = Clock::now();
    const bool ok = f();
    const std::clock_t c1 = std::clock();
    std::printf("%-28s %9.1f ms wall %9.1f ms CPU %s\n", what, 1000.0 * seconds_since(t0),
                1000.0 * double(c1 - c0) / CLOCKS_PER_SEC, ok ? "" : "FAILED");
}

int single_matrix(int argc, char** argv) {
    const int n_threads = argc > 1 ? std::stoi(argv[1]) : 0;
    const int64_t n = argc > 2 ? std::stoll(argv[2]) : 4096, k = argc > 3 ? std::stoll(argv[3]) : 11008;
    lowbit::ThreadPool::set_default_threads(n_threads);
    std::vector<float> w(static_cast<size_t>(n * k));
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.0f, 0.02f);
    for (float& x : w) x = d(rng);
    std::printf("matrix %lld x %lld, %d threads\n", (long long)n, (long long)k,
                lowbit::ThreadPool::global().n_threads());
    std::vector<uint8_t> codes[2];
    for (int blocked = 1; blocked >= 0; --blocked) {
        lowbit::quantize::hqq::HqqOptions o;
        o.blocked = blocked == 1;
        timed(blocked ? "hqq 4-bit g64 (blocked)" : "hqq 4-bit g64 (pass/iter)", [&] {
            auto r =
                lowbit::quantize::hqq::quantize_hqq(w.data(), lowbit::Shape{n, k}, lowbit::scheme::hqq::HqqParams{}, o);
            if (r.ok()) std::printf("  (%zu iterations)\n", r->errors.size());
            if (r.ok()) codes[blocked] = r->tensor.w_q;
            return r.ok();
        });
    }
    std::printf("blocked == pass/iter codes: %s\n", codes[0] == codes[1] ? "yes" : "NO");
    timed("nf4 b64 + double quant", [&] {
        return lowbit::scheme::nf4::quantize(w.data(), lowbit::Shape{n, k}, lowbit::scheme::nf4::Nf4Params{}).ok();
    });
    timed("rtn int4 g128 asym", [&] {
        return lowbit::scheme::int_group::quantize_rtn(w.data(), n, k, lowbit::scheme::int_group::IntGroupParams{})
            .ok();
    });
    return 0;
}

// ---- the 7B-shaped model ------------------------------------------------------------------------------------

struct Linear {
    const char* name;
    int64_t rows, cols; // nn.Linear [out, in]
};
constexpr Linear kLayer[] = {{"q_proj", 4096, 4096},    {"k_proj", 4096, 4096},     {"v_proj", 4096, 4096},
                             {"o_proj", 4096, 4096},    {"gate_proj", 11008, 4096}, {"up_proj", 11008, 4096},
                             {"down_proj", 4096, 11008}};
constexpr double kHqqAnchorS = 0.03; // hqq 4-bit, one 4096x11008 matrix, H100 (docs/ANCHORS.md)

// bf16 weights 0.02 * t(4) (heavy tails: kurtosis > normal) with a per-row spread, from a per-row counter PRNG
// so the pool's split does not change the values.
std::vector<uint16_t> make_bf16(int64_t rows, int64_t cols, uint64_t seed, lowbit::ThreadPool& pool) {
    std::vector<uint16_t> out(size_t(rows * cols));
    pool.parallel_for(rows, [&](int64_t r0, int64_t r1, int) {
        for (int64_t r = r0; r < r1; ++r) {
            uint64_t s = seed * 0x9E3779B97F4A7C15ull + uint64_t(r) * 0xBF58476D1CE4E5B9ull + 1;
            auto next = [&s] { // splitmix64 -> (0, 1)
                uint64_t z = (s += 0x9E3779B97F4A7C15ull);
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
                return (double((z ^ (z >> 31)) >> 11) + 0.5) * 0x1.0p-53;
            };
            const double row_scale = 0.02 * (0.5 + next());
            for (int64_t c = 0; c < cols; ++c) {
                const double u1 = next(), u2 = next(), u3 = next(), u4 = next();
                const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
                const double chi2_4 = -2.0 * std::log(u3 * u4); // chi-square with 4 degrees of freedom
                const double t = z / std::sqrt(chi2_4 / 4.0);   // student t(4)
                out[size_t(r * cols + c)] = lowbit::f32_to_bf16(float(row_scale * t));
            }
        }
    });
    return out;
}

struct RunStats {
    double wall = 0.0;     // all matrices
    double wall_big = 0.0; // the 4096x11008 ones (gate, up, down)
    int n = 0, n_big = 0;
    int64_t iters = 0;
    uint64_t bytes = 0;
    bool ok = true;
};

using Outputs = std::vector<std::vector<lowbit::scheme::TensorRecord>>;

RunStats run_layers(const std::vector<std::vector<uint16_t>>& sets, int layers, lowbit::quantize::hqq::HqqDevice dev,
                    const lowbit::quantize::SchemeParams& sp, Outputs* layer0) {
    RunStats st;
    const auto t0 = Clock::now();
    for (int l = 0; l < layers; ++l) {
        for (size_t m = 0; m < std::size(kLayer); ++m) {
            const Linear& lin = kLayer[m];
            const std::vector<uint16_t>& w = sets[(size_t(l) % (sets.size() / std::size(kLayer))) * 7 + m];
            const auto t1 = Clock::now();
            auto r = lowbit::quantize::hqq::quantize_hqq_weights(w.data(), lowbit::DType::kBF16, lin.rows, lin.cols, sp,
                                                                 dev);
            const double dt = seconds_since(t1);
            if (!r.ok()) {
                std::printf("layer %d %s: %s\n", l, lin.name, r.error().message.c_str());
                st.ok = false;
                return st;
            }
            ++st.n;
            st.iters += r->report.n_iters;
            st.bytes += lowbit::scheme::records_bytes(r->records);
            if (lin.rows * lin.cols == 4096 * 11008) {
                st.wall_big += dt;
                ++st.n_big;
            }
            if (l == 0 && layer0) layer0->push_back(std::move(r->records));
        }
    }
    st.wall = seconds_since(t0);
    return st;
}

int model_7b(int argc, char** argv) {
    int layers = 32, cpu_layers = 1, threads = 0;
    bool cuda = true, pageable = false;
    lowbit::quantize::SchemeParams sp;
    sp.bits = 4;
    sp.group_size = 64;
    sp.axis = 1;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        const auto next = [&] { return i + 1 < argc ? std::stoi(argv[++i]) : 0; };
        if (a == "--layers")
            layers = next();
        else if (a == "--cpu-layers")
            cpu_layers = next();
        else if (a == "--bits")
            sp.bits = next();
        else if (a == "--group")
            sp.group_size = next();
        else if (a == "--threads")
            threads = next();
        else if (a == "--no-cuda")
            cuda = false;
        else if (a == "--pageable")
            pageable = true;
        else {
            std::fprintf(stderr, "hqq_bench 7b: unknown option '%s'\n", a.c_str());
            return 2;
        }
    }
    sp.round_zero = sp.bits == 4; // as `lowbit quantize --method hqq` (hqq_base_quant_config)
    lowbit::ThreadPool::set_default_threads(threads);
    lowbit::ThreadPool& pool = lowbit::ThreadPool::global();
    const int n_sets = std::max(1, std::min(layers, 2)); // distinct weight sets, cycled over the layers
    auto t0 = Clock::now();
    std::vector<std::vector<uint16_t>> sets;
    for (int s = 0; s < n_sets; ++s)
        for (size_t m = 0; m < std::size(kLayer); ++m)
            sets.push_back(make_bf16(kLayer[m].rows, kLayer[m].cols, uint64_t(s * 7 + m + 1), pool));
    std::printf("7B-shaped model: %d layers x 7 Linear (%.2f B weights, bf16 %.2f GiB), HQQ %d-bit g%lld axis 1, "
                "%d CPU threads; %d distinct weight sets generated in %.1f s\n",
                layers, layers * 202.375e6 / 1e9, layers * 202.375e6 * 2 / double(1ull << 30), sp.bits,
                (long long)sp.group_size, pool.n_threads(), n_sets, seconds_since(t0));

    Outputs cuda0, cpu0;
    RunStats gpu;
    if (cuda) {
        const lowbit::Status s = lowbit::quantize::hqq::hqq_cuda_available();
        if (!s.ok()) {
            std::printf("cuda: %s\n", s.error().message.c_str());
            cuda = false;
        }
    }
    if (cuda) {
        std::printf("cuda device: %s\n", lowbit::quantize::hqq::hqq_cuda_device_label().c_str());
        t0 = Clock::now(); // warm-up: context, buffers for the largest matrix, module load
        const RunStats warm = run_layers(sets, 1, lowbit::quantize::hqq::HqqDevice::kCuda, sp, nullptr);
        std::printf("cuda warm-up (1 layer, context + buffers): %.3f s\n", seconds_since(t0));
        if (!warm.ok) return 1;
        lowbit::quantize::hqq::device::reset_phase_times();
        gpu = run_layers(sets, layers, lowbit::quantize::hqq::HqqDevice::kCuda, sp, &cuda0);
        if (!gpu.ok) return 1;
        const auto pt = lowbit::quantize::hqq::device::phase_times();
        const double c = double(std::max<int64_t>(pt.calls, 1)) / 1e3;
        std::printf("cuda phases, ms per matrix: host copy to pinned %.2f | H2D span %.2f | kernels %.2f | D2H %.2f | "
                    "host after sync %.2f | solve total %.2f | call total %.2f\n",
                    pt.copy_in / c, pt.h2d / c, pt.kernels / c, pt.d2h / c, pt.host_out / c, pt.total / c,
                    1e3 * gpu.wall / gpu.n);
        if (pageable) { // the same with one cudaMemcpyAsync from pageable memory (no staging)
            lowbit::quantize::hqq::device::set_staged_upload(false);
            lowbit::quantize::hqq::device::reset_phase_times();
            const RunStats pg =
                run_layers(sets, std::min(layers, 4), lowbit::quantize::hqq::HqqDevice::kCuda, sp, nullptr);
            const auto pp = lowbit::quantize::hqq::device::phase_times();
            const double cp = double(std::max<int64_t>(pp.calls, 1)) / 1e3;
            std::printf("cuda pageable upload (%d layers): %.4f s/matrix, H2D span %.2f ms, kernels %.2f ms per "
                        "matrix\n",
                        std::min(layers, 4), pg.wall / std::max(pg.n, 1), pp.h2d / cp, pp.kernels / cp);
            lowbit::quantize::hqq::device::set_staged_upload(true);
        }
    }
    RunStats cpu;
    if (cpu_layers > 0) {
        cpu = run_layers(sets, cpu_layers, lowbit::quantize::hqq::HqqDevice::kCpu, sp, &cpu0);
        if (!cpu.ok) return 1;
    }
    std::printf("\n");
    if (cuda) {
        std::printf("cuda  %3d matrices  wall %8.3f s  %.4f s/matrix  4096x11008: %.4f s/matrix  mean iters %.2f  "
                    "%.1f MiB written\n",
                    gpu.n, gpu.wall, gpu.wall / gpu.n, gpu.wall_big / gpu.n_big, double(gpu.iters) / gpu.n,
                    double(gpu.bytes) / (1 << 20));
        std::printf("      vs hqq's ~%.2f s per 4096x11008 matrix on H100: %.1fx faster (%.2f GB/s of bf16 weights)\n",
                    kHqqAnchorS, kHqqAnchorS / (gpu.wall_big / gpu.n_big), layers * 202.375e6 * 2 / gpu.wall / 1e9);
    }
    if (cpu_layers > 0) {
        const double full = cpu.wall * double(layers) / double(cpu_layers);
        std::printf("cpu   %3d matrices  wall %8.3f s  %.4f s/matrix  4096x11008: %.4f s/matrix  mean iters %.2f  "
                    "(x%d layers: %.1f s estimated)\n",
                    cpu.n, cpu.wall, cpu.wall / cpu.n, cpu.wall_big / cpu.n_big, double(cpu.iters) / cpu.n, layers,
                    full);
        if (cuda) std::printf("cuda vs cpu per matrix: %.1fx\n", (cpu.wall / cpu.n) / (gpu.wall / gpu.n));
    }
    if (cuda && cpu_layers > 0) {
        int same = 0, total = 0;
        for (size_t m = 0; m < cpu0.size() && m < cuda0.size(); ++m) {
            bool eq = cpu0[m].size() == cuda0[m].size();
            for (size_t i = 0; eq && i < cpu0[m].size(); ++i) eq = cpu0[m][i].bytes == cuda0[m][i].bytes;
            same += eq;
            ++total;
            if (!eq) std::printf("layer 0 %s: cpu and cuda records differ\n", kLayer[m].name);
        }
        std::printf("layer 0: %d of %d matrices byte-identical between cpu and cuda\n", same, total);
        if (same != total) return 1;
    }
    return 0;
}

} // namespace

// `hqq_bench quantize IN OUT DEVICE [BITS [GROUP]]`: lowbit quantize --method hqq through pipeline::run_quantize
// (the CLI's call), for device runs that cannot carry the whole lowbit binary.
int quantize_dir(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: hqq_bench quantize IN OUT DEVICE [BITS [GROUP]]\n");
        return 2;
    }
    lowbit::pipeline::QuantizeJobOptions o;
    o.input = argv[2];
    o.output = argv[3];
    o.device = argv[4];
    o.method = "hqq";
    if (argc > 5) o.bits = std::stoi(argv[5]);
    if (argc > 6) o.group_size = std::stoll(argv[6]);
    o.progress = false;
    auto r = lowbit::pipeline::run_quantize(o);
    if (!r.ok()) {
        std::fprintf(stderr, "error: %s\n", r.error().message.c_str());
        return 1;
    }
    std::fputs(lowbit::pipeline::render_quantize_report(*r).c_str(), stdout);
    return 0;
}

int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "7b") == 0) return model_7b(argc, argv);
    if (argc > 1 && std::strcmp(argv[1], "quantize") == 0) return quantize_dir(argc, argv);
    return single_matrix(argc, argv);
}
