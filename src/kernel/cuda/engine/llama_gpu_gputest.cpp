// SPDX-License-Identifier: MIT
// CUDA engine matmul parity (label gpu; skips without CUDA or a device): for every weight type the engine runs,
// the GEMV (m = 1, 3, 8; 19 = three GEMV passes) and the dequantize + cuBLAS GEMM (m = 40, and m = 2 forced) against
// the scalar reference matmul (kernel::matmul on Backend::kRef: dequantize_row + f32 dots) on fresh random weights and
// activations — for the types whose GEMV takes 8-bit activations (gpu_gemv_uses_q8_activations), on the activations
// rounded as the CPU's qdot rounds them. Bounds, as ‖gpu − ref‖ / ‖ref‖: GEMV 1e-5 (f32 products of exact values,
// only the summation order differs); GEMM 4e-3
// (activations rounded to f16 — bf16 for bf16 weights, 1.6e-2 — weights to f16 for block types).
#include "core/half.h"
#include "kernel/cpu/qdot/qdot.h"
#include "kernel/cuda/cuda_backend.h"
#include "kernel/cuda/engine/gpu_repack.h"
#include "kernel/cuda/engine/llama_gpu.h"
#include "kernel/kernel.h"
#include "kernel/ref/matmul_int8_decomp.h"
#include "scheme/packed4/packed4.h"
#include "scheme/scheme_list.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
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

// want[m, n_rows] through the CPU qdot's scalar dot of dt (x quantized by quantize_row_q8): the reference of the
// GEMVs whose integer parts are the CPU's own — NF4/FP4 on int16 codes (rounded by up to 2^-16 of absmax, which
// the f32 reference would count as error), and q8_0/q4_0 bit for bit.
void qdot_reference(DType dt, const std::vector<uint8_t>& w, uint64_t row_bytes, int64_t n_rows, int64_t n_cols,
                    const std::vector<float>& x, int64_t m, std::vector<float>& want) {
    const cpu::qdot::DotFn dot = cpu::qdot::find_dot(dt, cpu::qdot::Level::kScalar);
    ASSERT_NE(dot, nullptr) << dtype_name(dt);
    std::vector<cpu::qdot::BlockQ8> xq(size_t(m * n_cols / 32));
    for (int64_t t = 0; t < m; ++t)
        cpu::qdot::quantize_row_q8(x.data() + t * n_cols, xq.data() + t * (n_cols / 32), n_cols);
    for (int64_t r = 0; r < n_rows; ++r)
        dot(n_cols, w.data() + uint64_t(r) * row_bytes, xq.data(), int64_t(sizeof(cpu::qdot::BlockQ8)) * (n_cols / 32),
            int(m), want.data() + r, n_rows);
}

bool f4_type(DType dt) {
    return dt == DType::kNF4x64 || dt == DType::kFP4x64;
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
            // 8-bit activations: the reference multiplies by x rounded exactly as the CPU's qdot rounds it (NF4/FP4:
            // the CPU qdot itself, int16 codes).
            if (q8 && f4_type(dt))
                qdot_reference(dt, w, row_bytes, n_rows, n_cols, x, m, want);
            else
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

// kI4Z rows of int4 g128 (one f16 (d, z) per 128 weights, as GPTQ/AWQ/HQQ/RTN g128 files load): the engine stores
// the pair once per group (device layout 2, 4.25 bpw); every path (GEMV with 8-bit activations, GEMM) against the
// reference on the same rows. device_layout itself is checked on the host: 2 for these rows, 0 once one block of a
// group differs or the row is not a multiple of 16 blocks.
std::vector<uint8_t> i4z_g128_rows(int64_t n_rows, int64_t n_cols, std::mt19937& rng) {
    std::uniform_int_distribution<int> code(0, 15);
    std::uniform_real_distribution<float> scale(0.005f, 0.05f);
    const uint64_t row_bytes = uint64_t(n_cols / 32) * 20;
    std::vector<uint8_t> w(row_bytes * uint64_t(n_rows)), codes(static_cast<size_t>(n_cols));
    std::vector<float> scales(size_t(n_cols / 128)), zeros(size_t(n_cols / 128));
    for (int64_t r = 0; r < n_rows; ++r) {
        for (auto& c : codes) c = uint8_t(code(rng));
        for (size_t g = 0; g < scales.size(); ++g)
            scales[g] = f16_to_f32(f32_to_f16(scale(rng))), zeros[g] = float(code(rng)) + 0.5f * float(g % 2);
        EXPECT_TRUE(scheme::packed4::pack_row_i4z(codes.data(), scales.data(), zeros.data(), 128, n_cols,
                                                  w.data() + uint64_t(r) * row_bytes));
    }
    return w;
}

TEST(GpuEngine, I4ZGroupLayoutIsChosenOnTheHost) {
    std::mt19937 rng(11);
    std::vector<uint8_t> w = i4z_g128_rows(5, 1024, rng);
    const uint64_t rb = 32 * 20;
    EXPECT_EQ(engine::device_layout(DType::kI4Z, w.data(), rb, 5, rb), engine::kLayoutI4ZG128);
    EXPECT_EQ(engine::device_row_bytes(rb, engine::kLayoutI4ZG128), 32u * 16 + 8 * 4);
    EXPECT_EQ(engine::device_layout(DType::kQ4_0, w.data(), rb, 5, rb), engine::kLayoutFile);
    w[rb * 3 + 20 * 6] ^= 1; // row 3, block 6: its d no longer that of block 4
    EXPECT_EQ(engine::device_layout(DType::kI4Z, w.data(), rb, 5, rb), engine::kLayoutFile);
    std::vector<uint8_t> narrow = i4z_g128_rows(2, 384, rng); // 12 blocks: not a multiple of 16
    EXPECT_EQ(engine::device_layout(DType::kI4Z, narrow.data(), 12 * 20, 2, 12 * 20), engine::kLayoutFile);
}

TEST(GpuEngine, I4ZGroupLayoutMatchesReference) {
    if (const std::string why = cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (const auto& [n_rows, n_cols] : {std::pair<int64_t, int64_t>{67, 512}, {300, 4096}}) {
        const std::vector<uint8_t> w = i4z_g128_rows(n_rows, n_cols, rng);
        const uint64_t row_bytes = uint64_t(n_cols / 32) * 20;
        ASSERT_EQ(engine::device_layout(DType::kI4Z, w.data(), row_bytes, n_rows, row_bytes), engine::kLayoutI4ZG128);
        const WeightView view = make_weight(w.data(), DType::kI4Z, n_rows, n_cols);
        GpuWeight g;
        g.data = w.data(), g.dtype = DType::kI4Z, g.n_rows = n_rows, g.n_cols = n_cols, g.row_bytes = row_bytes;
        for (int64_t m : {1, 3, 8, 19, 40}) {
            std::vector<float> x(size_t(m * n_cols)), want(size_t(m * n_rows)), got(size_t(m * n_rows), NAN);
            for (auto& v : x) v = nd(rng);
            const bool gemm = m > 32, q8 = !gemm && gpu_gemv_uses_q8_activations(DType::kI4Z);
            matmul(Exec{Backend::kRef, nullptr}, q8 ? q8_rounded(x, n_cols).data() : x.data(), m, view, nullptr,
                   want.data());
            ASSERT_TRUE(gpu_matmul(g, x.data(), m, got.data()).ok());
            const double err = rel_l2(got, want), bound = gemm ? 4e-3 : 1e-5;
            std::printf("i4z g128 layout %4lld x %5lld m=%-3lld rel err %.2e (bound %.0e)\n", (long long)n_rows,
                        (long long)n_cols, (long long)m, err, bound);
            EXPECT_LE(err, bound) << "m=" << m;
        }
    }
}

// GPTQ act-order (GpuWeight::col_perm): x is gathered into the stored column order on the device, then multiplied
// as usual — against the reference on x gathered on the host (8-bit activations rounded after the gather, in the
// stored order's blocks, as the GPU does).
TEST(GpuEngine, ActOrderColumnsAreGathered) {
    if (const std::string why = cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    std::mt19937 rng(17);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int64_t n_rows = 96, n_cols = 1024;
    const std::vector<uint8_t> w = i4z_g128_rows(n_rows, n_cols, rng);
    const uint64_t row_bytes = uint64_t(n_cols / 32) * 20;
    std::vector<int32_t> perm(static_cast<size_t>(n_cols));
    for (int64_t j = 0; j < n_cols; ++j) perm[size_t(j)] = int32_t(j);
    std::shuffle(perm.begin(), perm.end(), rng);
    const WeightView view = make_weight(w.data(), DType::kI4Z, n_rows, n_cols);
    GpuWeight g;
    g.data = w.data(), g.dtype = DType::kI4Z, g.n_rows = n_rows, g.n_cols = n_cols, g.row_bytes = row_bytes;
    g.col_perm = perm.data();
    for (int64_t m : {1, 5, 40}) {
        std::vector<float> x(size_t(m * n_cols)), xg(x.size()), want(size_t(m * n_rows)), got(want.size(), NAN);
        for (auto& v : x) v = nd(rng);
        for (int64_t t = 0; t < m; ++t)
            for (int64_t j = 0; j < n_cols; ++j) xg[size_t(t * n_cols + j)] = x[size_t(t * n_cols + perm[size_t(j)])];
        const bool gemm = m > 32, q8 = !gemm && gpu_gemv_uses_q8_activations(DType::kI4Z);
        matmul(Exec{Backend::kRef, nullptr}, q8 ? q8_rounded(xg, n_cols).data() : xg.data(), m, view, nullptr,
               want.data());
        ASSERT_TRUE(gpu_matmul(g, x.data(), m, got.data()).ok());
        const double err = rel_l2(got, want), bound = gemm ? 4e-3 : 1e-5;
        std::printf("i4z act-order %4lld x %5lld m=%-3lld rel err %.2e (bound %.0e)\n", (long long)n_rows,
                    (long long)n_cols, (long long)m, err, bound);
        EXPECT_LE(err, bound) << "m=" << m;
    }
}

// q8_0 and q4_0 with LOWBIT_GEMV_ORDER=cpu: the GEMV sums in the CPU's order (gemv_q8_cpu_order), so with 8-bit
// activations its results are the CPU qdot's scalar dot — and so the AVX2 rows dots' — bit for bit: for m = 1, 3, 8
// tokens and K = 4096 / 11008 (the model's shapes: 128 / 344 sub-blocks, several 32·U chunks with a partial last one).
TEST(GpuEngine, Q8GemvHasCpuBits) {
    if (const std::string why = cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    if (const char* e = std::getenv("LOWBIT_GEMV_ORDER"); !e || std::string(e) != "cpu")
        GTEST_SKIP() << "the CPU-order GEMV is opt-in: LOWBIT_GEMV_ORDER=cpu (tests/gpu/run_on_device.sh runs it)";
    for (DType dt : {DType::kQ8_0, DType::kQ4_0}) {
        if (!gpu_gemv_uses_q8_activations(dt)) GTEST_SKIP() << "LOWBIT_GEMV=f32";
        const scheme::SchemeTraits* sc = scheme::find_scheme(dt);
        ASSERT_NE(sc, nullptr);
        std::mt19937 rng(uint32_t(dt) + 5u);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        for (const auto& [n_rows, n_cols] : {std::pair<int64_t, int64_t>{37, 4096}, {21, 11008}}) {
            const uint64_t row_bytes = uint64_t(n_cols / 32) * uint64_t(dtype_block_bytes(dt));
            std::vector<uint8_t> w(row_bytes * uint64_t(n_rows));
            std::vector<float> src(static_cast<size_t>(n_cols));
            for (int64_t r = 0; r < n_rows; ++r) {
                for (auto& v : src) v = nd(rng) * 0.05f;
                sc->quantize_row(src.data(), w.data() + uint64_t(r) * row_bytes, n_cols, nullptr);
            }
            GpuWeight g;
            g.data = w.data(), g.dtype = dt, g.n_rows = n_rows, g.n_cols = n_cols, g.row_bytes = row_bytes;
            for (int64_t m : {1, 3, 8}) {
                std::vector<float> x(size_t(m * n_cols)), got(size_t(m * n_rows), NAN), want(size_t(m * n_rows));
                for (auto& v : x) v = nd(rng);
                qdot_reference(dt, w, row_bytes, n_rows, n_cols, x, m, want);
                ASSERT_TRUE(gpu_matmul(g, x.data(), m, got.data()).ok());
                int64_t differ = 0;
                for (size_t i = 0; i < want.size(); ++i) differ += std::memcmp(&got[i], &want[i], 4) != 0;
                EXPECT_EQ(differ, 0) << dtype_name(dt) << " K=" << n_cols << " m=" << m << ": first " << got[0]
                                     << " vs " << want[0];
            }
        }
    }
}

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
