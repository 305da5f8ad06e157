// SPDX-License-Identifier: MIT
// CUDA engine matmul parity (label gpu; skips without CUDA or a device): for every weight type the engine runs,
// the GEMV (m = 1, 3, 8; 19 = three GEMV passes) and the dequantize + cuBLAS GEMM (m = 40, and m = 2 forced) against
// the scalar reference matmul (kernel::matmul on Backend::kRef: dequantize_row + f32 dots) on fresh random weights and
// activations — for the types whose GEMV takes 8-bit activations (gpu_gemv_uses_q8_activations), on the activations
// rounded as the CPU's qdot rounds them. Bounds, as ‖gpu − ref‖ / ‖ref‖: GEMV 1e-5 (f32 products of exact values,
// only the summation order differs); GEMM 4e-3
// (activations rounded to f16 — bf16 for bf16 weights, 1.6e-2 — weights to f16 for block types).
#include "kernel/cpu/qdot/qdot.h"
#include "kernel/cuda/cuda_backend.h"
#include "kernel/cuda/engine/llama_gpu.h"
#include "kernel/kernel.h"
#include "kernel/ref/matmul_int8_decomp.h"
#include "scheme/scheme_list.h"

#include <cmath>
#include <gtest/gtest.h>
#include <random>
#include <vector>

namespace lowbit::kernel::cuda {
namespace {

double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
    double num = 0, den = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        if (!std::isfinite(got[i])) return INFINITY;
        num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
        den += double(want[i]) * want[i];
    }
    return std::sqrt(num / den);
}

// x rounded through the CPU's 8-bit activation blocks (qdot::quantize_row_q8: d · q per block of 32).
std::vector<float> q8_rounded(const std::vector<float>& x, int64_t n_cols) {
    std::vector<float> out(x.size());
    std::vector<cpu::qdot::BlockQ8> blocks(size_t(n_cols / 32));
    for (size_t r = 0; r < x.size() / size_t(n_cols); ++r) {
        cpu::qdot::quantize_row_q8(x.data() + r * size_t(n_cols), blocks.data(), n_cols);
        for (size_t b = 0; b < blocks.size(); ++b)
            for (int j = 0; j < 32; ++j)
                out[r * size_t(n_cols) + 32 * b + size_t(j)] = blocks[b].d * float(blocks[b].qs[j]);
    }
    return out;
}

class GpuMatmul : public ::testing::TestWithParam<DType> {
  protected:
    void SetUp() override {
        if (const std::string why = cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    }
};

TEST_P(GpuMatmul, MatchesReference) {
    const DType dt = GetParam();
    const scheme::SchemeTraits* sc = scheme::find_scheme(dt);
    ASSERT_NE(sc, nullptr);
    ASSERT_NE(sc->quantize_row, nullptr) << dtype_name(dt);
    ASSERT_TRUE(gpu_engine_supports(dt));
    std::mt19937 rng(uint32_t(dt) * 7919u + 17u);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (const auto& [n_rows, n_cols] : {std::pair<int64_t, int64_t>{67, 512}, {300, 1024}}) {
        const uint64_t row_bytes = uint64_t(n_cols / dtype_block_elems(dt)) * uint64_t(dtype_block_bytes(dt));
        std::vector<uint8_t> w(row_bytes * uint64_t(n_rows));
        std::vector<float> src(static_cast<size_t>(n_cols));
        for (int64_t r = 0; r < n_rows; ++r) {
            for (auto& v : src) v = nd(rng) * 0.05f;
            sc->quantize_row(src.data(), w.data() + uint64_t(r) * row_bytes, n_cols, nullptr);
        }
        const WeightView view = make_weight(w.data(), dt, n_rows, n_cols);
        GpuWeight g;
        g.data = w.data(), g.dtype = dt, g.n_rows = n_rows, g.n_cols = n_cols, g.row_bytes = row_bytes;
        for (int64_t m : {1, 3, 8, 19, 40}) {
            std::vector<float> x(size_t(m * n_cols)), want(size_t(m * n_rows)), got(size_t(m * n_rows), NAN);
            for (auto& v : x) v = nd(rng);
            const bool gemm = m > 32, q8 = !gemm && gpu_gemv_uses_q8_activations(dt);
            // 8-bit activations: the reference multiplies by x rounded exactly as the CPU's qdot rounds it.
            matmul(Exec{Backend::kRef, nullptr}, q8 ? q8_rounded(x, n_cols).data() : x.data(), m, view, nullptr,
                   want.data());
            const Status st = gpu_matmul(g, x.data(), m, got.data());
            ASSERT_TRUE(st.ok()) << st.error().message;
            const double err = rel_l2(got, want);
            const double bound = !gemm ? 1e-5 : (dt == DType::kBF16 ? 1.6e-2 : 4e-3);
            std::printf("%-5s %4lld x %5lld m=%-3lld %s rel err %.2e (bound %.0e)\n",
                        std::string(dtype_name(dt)).c_str(), (long long)n_rows, (long long)n_cols, (long long)m,
                        gemm ? "gemm"
                        : q8 ? "gemv-q8"
                             : "gemv",
                        err, bound);
            EXPECT_LE(err, bound) << dtype_name(dt) << " m=" << m;
        }
        // The GEMM path also for few tokens (the engine uses it for prefill chunks of any size > 8).
        std::vector<float> x(size_t(2 * n_cols)), want(size_t(2 * n_rows)), got(size_t(2 * n_rows), NAN);
        for (auto& v : x) v = nd(rng);
        matmul(Exec{Backend::kRef, nullptr}, x.data(), 2, view, nullptr, want.data());
        ASSERT_TRUE(gpu_matmul(g, x.data(), 2, got.data(), /*force_gemm=*/true).ok());
        EXPECT_LE(rel_l2(got, want), dt == DType::kBF16 ? 1.6e-2 : 4e-3) << dtype_name(dt);
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, GpuMatmul,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                                           DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ2_K, DType::kQ3_K,
                                           DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kI4Z, DType::kNF4x64,
                                           DType::kFP4x64),
                         [](const auto& p) { return std::string(dtype_name(p.param)); });

// LLM.int8 (kI8 + row scales): the device decomposition against kernel::ref::matmul_int8_decomp, with and without
// outlier columns, for decode and prefill token counts. The integer parts are the reference's exactly (same outlier
// columns, same int8 activations); only the order of float additions differs: bound 1e-5.
TEST(GpuEngine, Int8DecompositionMatchesReference) {
    if (const std::string why = cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    std::mt19937 rng(4242u);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_int_distribution<int> q(-127, 127);
    const int64_t n_rows = 300, n_cols = 1024;
    std::vector<int8_t> w(size_t(n_rows * n_cols));
    std::vector<float> scb(static_cast<size_t>(n_rows));
    for (auto& v : w) v = int8_t(q(rng));
    for (auto& v : scb) v = 0.01f + 0.05f * std::fabs(nd(rng));
    GpuWeight g;
    g.data = w.data(), g.dtype = DType::kI8, g.n_rows = n_rows, g.n_cols = n_cols, g.row_bytes = uint64_t(n_cols);
    g.row_scale = scb.data();
    for (const float threshold : {6.0f, 0.0f}) {
        g.outlier_threshold = threshold;
        for (int64_t m : {1, 3, 8, 19, 40}) {
            std::vector<float> x(size_t(m * n_cols)), want(size_t(m * n_rows)), got(size_t(m * n_rows), NAN);
            for (auto& v : x) v = nd(rng);
            for (int64_t c = 5; c < n_cols; c += 97) x[size_t((c % m) * n_cols + c)] = 9.0f; // outlier columns
            ref::Int8DecompStats stats;
            ASSERT_TRUE(ref::matmul_int8_decomp(x.data(), m, n_cols, w.data(), scb.data(), n_rows, threshold,
                                                want.data(), &stats)
                            .ok());
            const Status st = gpu_matmul(g, x.data(), m, got.data());
            ASSERT_TRUE(st.ok()) << st.error().message;
            const double err = rel_l2(got, want);
            std::printf(
                "i8    %4lld x %5lld m=%-3lld threshold %.0f (%lld outlier columns) rel err %.2e (bound 1e-5)\n",
                (long long)n_rows, (long long)n_cols, (long long)m, threshold, (long long)stats.n_outlier_cols, err);
            EXPECT_LE(err, 1e-5) << "m=" << m << " threshold " << threshold;
            if (threshold > 0.0f) {
                EXPECT_GE(stats.n_outlier_cols, 10);
            }
        }
    }
}

TEST(GpuEngine, UnsupportedTypeIsNamed) {
    if (const std::string why = cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    std::vector<uint8_t> w(64 * 32);
    GpuWeight g;
    g.data = w.data(), g.dtype = DType::kI8, g.n_rows = 64, g.n_cols = 32, g.row_bytes = 32;
    std::vector<float> x(32), y(64);
    const Status st = gpu_matmul(g, x.data(), 1, y.data());
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(st.error().message.find("i8"), std::string::npos) << st.error().message;
}

} // namespace
} // namespace lowbit::kernel::cuda
