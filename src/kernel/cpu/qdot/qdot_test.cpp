// SPDX-License-Identifier: MIT
// qdot tests, for every dtype and every level this CPU runs (levels it lacks are skipped, never failed):
//  (a) each level's dot against a plain q8 reference: the weight row dequantized by its scheme row, the
//      activation blocks dequantized (d * q), summed in double; tolerance 1e-5 of Σ|w_i x_i| (f32 summation
//      order only: the integer parts are exact; NF4/FP4 also the int16 rounding of their codes), n_x = 1..kMaxX;
//  (b) the whole matmul against ref::matmul (f32 x): the error comes from the 8-bit rounding of x alone, whose
//      expected square norm is Σ_out Σ_i w_i² d_i² / 12 (d_i the activation block's scale, rounding uniform in
//      ±d/2); the test allows 2x that norm, and relative L2 error <= 1e-2. F16/BF16 keep x in f32: NMSE < 1e-10;
//  (c) each row's bits independent of how many rows share a call (batched decode == decode alone);
//  (d) the rows dots (8 weight rows per call) against the single-row dots, bit for bit, and for the types whose
//      AVX2 kernels keep the scalar order (Q4_0, Q8_0, kI4Z, NF4/FP4) against the scalar level, bit for bit (also
//      on raw random blocks: fractional zero points, every code, and at extreme levels);
//  (e) the k-quant register tiles (AVX2, n_x >= 2; built with and without AVX-VNNI) on raw random and extreme
//      blocks, bit for bit against the single-activation-row dot, and against the plain reference.
#include "core/half.h"
#include "kernel/cpu/cpu_ops.h"
#include "kernel/cpu/qdot/qdot.h"
#include "kernel/kernel_list.h"
#include "kernel/ref/ref_ops.h"
#include "scheme/packed4/packed4.h"
#include "scheme/q4_k/q4_k.h"
#include "scheme/q6_k/q6_k.h"
#include "scheme/scheme_list.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace lowbit::kernel::cpu::qdot {
namespace {

const DType kDtypes[] = {DType::kQ4_0, DType::kQ4_1,   DType::kQ5_0,   DType::kQ5_1, DType::kQ8_0, DType::kQ2_K,
                         DType::kQ3_K, DType::kQ4_K,   DType::kQ5_K,   DType::kQ6_K, DType::kF16,  DType::kBF16,
                         DType::kI4Z,  DType::kNF4x64, DType::kFP4x64, DType::kI8Z};
const Level kLevels[] = {Level::kScalar, Level::kAvx2, Level::kAvx512};

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

struct Weights {
    std::vector<uint8_t> bytes;
    std::vector<float> deq; // [n, k] what the bytes decode to (scheme row)
    WeightView view;
};

Weights make_weights(DType dtype, int64_t n, int64_t k, uint32_t seed) {
    const auto* s = scheme::find_scheme(dtype);
    Weights w;
    const uint64_t row_bytes = *dtype_row_bytes(dtype, uint64_t(k));
    w.bytes.resize(row_bytes * uint64_t(n));
    w.deq.resize(size_t(n * k));
    const auto f = randn(size_t(n * k), seed, 0.05f);
    for (int64_t r = 0; r < n; ++r) {
        s->quantize_row(f.data() + r * k, w.bytes.data() + uint64_t(r) * row_bytes, k, nullptr);
        s->dequantize_row(w.bytes.data() + uint64_t(r) * row_bytes, w.deq.data() + r * k, k);
    }
    w.view = make_weight(w.bytes.data(), dtype, n, k);
    return w;
}

// The absmax of the kNF4x64 / kFP4x64 block holding element i of row r.
double block_absmax(const Weights& w, int64_t r, int64_t i) {
    scheme::packed4::BlockF4x64 b;
    std::memcpy(&b, w.view.row(r) + (i / 64) * int64_t(sizeof b), sizeof b);
    return b.absmax;
}

// Activation rows in the dot's layout and what they decode to (f32 rows are their own decoding).
struct Act {
    std::vector<uint8_t> bytes;
    std::vector<float> deq;   // [m, k]
    std::vector<float> scale; // [m, k] the block scale d of each element (0 for f32)
    int64_t stride = 0;
};

Act make_act(ActKind kind, const std::vector<float>& x, int64_t m, int64_t k) {
    Act a;
    a.stride = act_row_bytes(kind, k);
    a.bytes.resize(size_t(m * a.stride));
    a.deq = x;
    a.scale.assign(x.size(), 0.0f);
    for (int64_t i = 0; i < m; ++i) {
        uint8_t* row = a.bytes.data() + i * a.stride;
        if (kind == ActKind::kF32) {
            std::memcpy(row, x.data() + i * k, size_t(k) * 4);
            continue;
        }
        const int blk = kind == ActKind::kQ8 ? 32 : 256;
        for (int64_t b = 0; b < k / blk; ++b) {
            float d;
            const int8_t* qs;
            if (kind == ActKind::kQ8) {
                auto* y = reinterpret_cast<BlockQ8*>(row) + b;
                quantize_row_q8(x.data() + i * k + b * blk, y, blk);
                d = y->d, qs = y->qs;
            } else {
                auto* y = reinterpret_cast<BlockQ8K*>(row) + b;
                quantize_row_q8k(x.data() + i * k + b * blk, y, blk);
                d = y->d, qs = y->qs;
            }
            for (int e = 0; e < blk; ++e) {
                a.deq[size_t(i * k + b * blk + e)] = d * float(qs[e]);
                a.scale[size_t(i * k + b * blk + e)] = d;
            }
        }
    }
    return a;
}

std::string label(DType dtype, Level level) {
    return std::string(dtype_name(dtype)) + " @" + level_name(level);
}

TEST(Qdot, QuantizeRowsKeepSumsAndBound) {
    const auto x = randn(512, 3);
    std::vector<BlockQ8K> yk(2);
    quantize_row_q8k(x.data(), yk.data(), 512);
    std::vector<BlockQ8> y(16);
    quantize_row_q8(x.data(), y.data(), 512);
    for (int b = 0; b < 2; ++b)
        for (int g = 0; g < 16; ++g) {
            int sum = 0;
            for (int e = 0; e < 16; ++e) {
                const int i = 256 * b + 16 * g + e;
                sum += yk[b].qs[16 * g + e];
                EXPECT_LE(std::fabs(yk[b].d * yk[b].qs[16 * g + e] - x[i]), 0.5f * yk[b].d * 1.0001f);
            }
            EXPECT_EQ(yk[b].bsums[g], sum);
        }
    for (int b = 0; b < 16; ++b) {
        int sum = 0;
        for (int e = 0; e < 32; ++e) {
            sum += y[b].qs[e];
            EXPECT_LE(std::fabs(y[b].d * y[b].qs[e] - x[32 * b + e]), 0.5f * y[b].d * 1.0001f);
        }
        EXPECT_FLOAT_EQ(y[b].s, y[b].d * float(sum));
    }
}

// Every level's activation quantizer (find_quantize_q8k) gives the portable one's bytes: random rows over a wide
// range of scales, an all-zero block, a single nonzero, exact ties (amax 127 -> d = 1: x = ±(n + 0.5) rounds to
// even), products that round to a tie (x * id must not be fused with the rounding add), denormals, values at ±amax.
TEST(Qdot, QuantizeQ8KSameBytesAtEveryLevel) {
    const int64_t nb = 12, k = 256 * nb;
    std::vector<float> x = randn(size_t(k), 5);
    for (int64_t b = 0; b < nb; ++b) {
        float* xb = x.data() + 256 * b;
        const float scale = std::ldexp(1.0f, int(b * 11) - 60); // 2^-60 .. 2^61
        for (int e = 0; e < 256; ++e) xb[e] *= scale;
    }
    float* z = x.data() + 256 * 2;
    std::fill(z, z + 256, 0.0f); // all zero: d = 0, q = 0
    float* one = x.data() + 256 * 3;
    std::fill(one, one + 256, 0.0f);
    one[77] = -3.25f; // a single nonzero: -127 there
    float* ties = x.data() + 256 * 4;
    for (int e = 0; e < 256; ++e) ties[e] = float(e % 250 - 125) + (e % 3 == 0 ? 0.0f : e % 3 == 1 ? 0.5f : -0.5f);
    ties[0] = 127.0f, ties[1] = -127.0f; // amax 127 -> d = 1, id = 1: exact .5 ties
    // amax 381 -> d = 3, id = 1 / 3 rounded up: x = 3 (n + 0.5) gives x * id just above n + 0.5, which rounds to the
    // f32 n + 0.5 (a tie: n even stays n). A fused x * id + bias (FMA contraction) would see the excess and give n + 1.
    float* near_ties = x.data() + 256 * 6;
    for (int e = 0; e < 256; ++e) near_ties[e] = 3.0f * (float(2 * (e % 60) - 60) + 0.5f);
    near_ties[0] = 381.0f;
    float* den = x.data() + 256 * 5;
    for (int e = 0; e < 256; ++e) den[e] = std::ldexp(float(e % 17) - 8.0f, -140); // denormals
    const Level levels[] = {Level::kScalar, Level::kAvx2, Level::kAvx512};
    std::vector<BlockQ8K> want(static_cast<size_t>(nb));
    quantize_row_q8k(x.data(), want.data(), k);
    int n_levels = 0;
    for (Level level : levels) {
        if (!supported(level)) continue;
        std::vector<BlockQ8K> got(static_cast<size_t>(nb));
        std::memset(got.data(), 0x5A, got.size() * sizeof(BlockQ8K));
        find_quantize_q8k(level)(x.data(), got.data(), k);
        for (int64_t b = 0; b < nb; ++b) {
            ASSERT_EQ(std::memcmp(&got[size_t(b)].d, &want[size_t(b)].d, sizeof(float)), 0)
                << level_name(level) << " block " << b << ": d " << got[size_t(b)].d << " vs " << want[size_t(b)].d;
            for (int e = 0; e < 256; ++e)
                ASSERT_EQ(got[size_t(b)].qs[e], want[size_t(b)].qs[e])
                    << level_name(level) << " block " << b << " element " << e << " x " << x[size_t(256 * b + e)];
            for (int g = 0; g < 16; ++g)
                ASSERT_EQ(got[size_t(b)].bsums[g], want[size_t(b)].bsums[g]) << level_name(level) << " block " << b;
        }
        ++n_levels;
    }
    EXPECT_GE(n_levels, 1);
    EXPECT_EQ(want[4].qs[2], -124); // -123.5 -> -124 (even)
    EXPECT_EQ(want[4].qs[4], -120); // -120.5 -> -120 (even)
    EXPECT_EQ(want[6].qs[1], -58);  // 3 * -57.5 * (1 / 3) -> the f32 -57.5 -> -58 (even); fused: -57
    EXPECT_EQ(want[6].qs[2], -56);  // 3 * -55.5 * (1 / 3) -> -55.5 -> -56; fused: -55
}

TEST(Qdot, LevelsResolveAndClamp) {
    EXPECT_TRUE(supported(Level::kScalar));
    EXPECT_EQ(resolve_level("scalar"), Level::kScalar);
    const Level best = resolve_level(nullptr);
    EXPECT_TRUE(supported(best));
    EXPECT_EQ(resolve_level("avx512"), best); // clamped to what the CPU has (or avx512 itself)
    EXPECT_EQ(resolve_level("avx2"), supported(Level::kAvx2) ? Level::kAvx2 : Level::kScalar);
    EXPECT_EQ(resolve_level("bogus"), best);
    for (DType dtype : kDtypes) {
        EXPECT_NE(find_dot(dtype, Level::kScalar), nullptr) << dtype_name(dtype);
#if defined(__x86_64__)
        EXPECT_NE(find_dot(dtype, Level::kAvx2), nullptr) << dtype_name(dtype); // built on every x86-64
#endif
        EXPECT_NE(best_dot(dtype, Level::kAvx512), nullptr) << dtype_name(dtype);
    }
}

// (a) every level against the plain q8 reference, n_x = 1..4, several K.
TEST(Qdot, VecDotMatchesQ8Reference) {
    int n_checked = 0;
    for (DType dtype : kDtypes) {
        ActKind kind;
        ASSERT_TRUE(act_kind(dtype, &kind));
        const int64_t blk = dtype_block_elems(dtype);
        for (int64_t k : {int64_t(256), int64_t(1024), blk == 32 ? int64_t(96) : int64_t(768)}) {
            const int64_t n = 5;
            const auto w = make_weights(dtype, n, k, uint32_t(k) + 17);
            const auto x = randn(size_t(kMaxX * k), uint32_t(k) + 5);
            const Act a = make_act(kind, x, kMaxX, k);
            for (Level level : kLevels) {
                const DotFn dot = find_dot(dtype, level);
                if (!supported(level) || !dot) continue;
                for (int64_t r = 0; r < n; ++r)
                    for (int n_x = 1; n_x <= kMaxX; ++n_x) {
                        std::vector<float> got(size_t(2 * n_x), NAN);
                        dot(k, w.view.row(r), a.bytes.data(), a.stride, n_x, got.data(), 2);
                        for (int j = 0; j < n_x; ++j) {
                            double want = 0, mag = 0, code_err = 0;
                            for (int64_t i = 0; i < k; ++i) {
                                const double p = double(w.deq[size_t(r * k + i)]) * a.deq[size_t(j * k + i)];
                                want += p, mag += std::fabs(p);
                                // NF4/FP4: codes as int16 (qdot.h), each off by <= 0.5 / 32767 of the absmax.
                                if (dtype == DType::kNF4x64 || dtype == DType::kFP4x64)
                                    code_err += block_absmax(w, r, i) / (2.0 * kCode16Scale) *
                                                std::fabs(a.deq[size_t(j * k + i)]);
                            }
                            ASSERT_NEAR(got[size_t(2 * j)], want, 1e-5 * mag + code_err + 1e-30)
                                << label(dtype, level) << " K=" << k << " row " << r << " n_x=" << n_x << " x " << j;
                            ++n_checked;
                        }
                    }
            }
        }
    }
    EXPECT_GE(n_checked, 15 * 3 * 5 * 136); // every dtype x 3 K x 5 rows x (1+2+...+16), scalar level at least
}

// (c) batched decode: a row's result is the same bits whether it is dotted alone or with up to kMaxX - 1 others
// (decode steps of many sequences give each the logits it gets alone), at every level, and matmul_qdot keeps the
// integer dots up to 32 activation rows (bitwise equal to matmul_qdot_at there).
TEST(Qdot, RowsGiveTheSameBitsInAnyBatch) {
    int n_checked = 0;
    for (DType dtype : kDtypes) {
        ActKind kind;
        ASSERT_TRUE(act_kind(dtype, &kind));
        const int64_t k = 512, n = 3;
        const auto w = make_weights(dtype, n, k, 41);
        const auto x = randn(size_t(kMaxX * k), 43);
        const Act a = make_act(kind, x, kMaxX, k);
        for (Level level : kLevels) {
            const DotFn dot = find_dot(dtype, level);
            if (!supported(level) || !dot) continue;
            for (int64_t r = 0; r < n; ++r) {
                std::vector<float> alone(static_cast<size_t>(kMaxX));
                for (int j = 0; j < kMaxX; ++j)
                    dot(k, w.view.row(r), a.bytes.data() + j * a.stride, a.stride, 1, &alone[size_t(j)], 1);
                for (int n_x : {2, 4, 5, 7, 8, 13, kMaxX}) {
                    std::vector<float> got(size_t(n_x), NAN);
                    dot(k, w.view.row(r), a.bytes.data(), a.stride, n_x, got.data(), 1);
                    for (int j = 0; j < n_x; ++j) {
                        ASSERT_EQ(std::memcmp(&got[size_t(j)], &alone[size_t(j)], sizeof(float)), 0)
                            << label(dtype, level) << " row " << r << " n_x=" << n_x << " x " << j << ": "
                            << got[size_t(j)] << " vs " << alone[size_t(j)];
                        ++n_checked;
                    }
                }
            }
        }
        // The dispatching matmul: the integer path at 32 rows.
        ThreadPool pool(2);
        const int64_t m = 32;
        const auto xm = randn(size_t(m * 512), 47);
        std::vector<float> got(size_t(m * n)), want(size_t(m * n));
        matmul_qdot(xm.data(), m, w.view, nullptr, got.data(), &pool);
        ASSERT_TRUE(matmul_qdot_at(active_level(), xm.data(), m, w.view, nullptr, want.data(), &pool));
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << dtype_name(dtype) << " m=32";
    }
    EXPECT_GE(n_checked, 15 * 3 * 56); // every dtype x 3 rows x (2+4+5+7+8+13+16), scalar level at least
}

// (d) the rows dots (kRows weight rows per call): every (row, activation row) the same bits as the level's single-row
// dot and, for the types whose AVX2 kernels keep the scalar order (Q4_0, Q8_0, kI4Z, NF4/FP4), the same bits as the
// scalar level; weight rows with a stride larger than the row (views into a wider matrix), K = one block to 1024
// (F16/BF16: K = 37, 104, 1003).
TEST(Qdot, RowsDotsGiveTheSingleRowBits) {
    int n_checked = 0;
    for (DType dtype : kDtypes) {
        ActKind kind;
        ASSERT_TRUE(act_kind(dtype, &kind));
        for (Level level : kLevels) {
            const DotRowsFn rows = find_dot_rows(dtype, level);
            if (!supported(level) || !rows) continue;
            const DotFn dot = find_dot(dtype, level);
            ASSERT_NE(dot, nullptr) << label(dtype, level);
            const bool scalar_bits = dtype == DType::kQ4_0 || dtype == DType::kQ8_0 || dtype == DType::kI4Z ||
                                     dtype == DType::kNF4x64 || dtype == DType::kFP4x64 || dtype == DType::kI8Z;
            const DotFn scalar = find_dot(dtype, Level::kScalar);
            // F16/BF16 (blocks of 1): the 16-wide loop, the 8-wide step and the scalar tail.
            const int64_t blk = dtype_block_elems(dtype);
            const std::vector<int64_t> ks =
                blk == 1 ? std::vector<int64_t>{37, 104, 1003} : std::vector<int64_t>{blk, 3 * blk, 1024};
            for (int64_t k : ks) {
                const int64_t n = 3 * kRows; // room for rows r0 + 2r, r0 <= kRows + 1
                const auto w = make_weights(dtype, n, k, uint32_t(k) + 61);
                const auto x = randn(size_t(kMaxX * k), uint32_t(k) + 67);
                const Act a = make_act(kind, x, kMaxX, k);
                for (int n_x : {1, 2, 3, 4, 5, 9, kMaxX}) {
                    for (int64_t r0 : {int64_t(0), int64_t(3), int64_t(kRows + 1)}) {
                        // w_stride = 2 rows: the rows r0, r0 + 2, …
                        std::vector<float> got(size_t(n_x * (kRows + 1)), NAN);
                        rows(k, w.view.row(r0), int64_t(2 * w.view.row_bytes), a.bytes.data(), a.stride, n_x,
                             got.data(), kRows + 1);
                        for (int r = 0; r < kRows; ++r) {
                            std::vector<float> one(static_cast<size_t>(n_x)), ref(static_cast<size_t>(n_x));
                            dot(k, w.view.row(r0 + 2 * r), a.bytes.data(), a.stride, n_x, one.data(), 1);
                            scalar(k, w.view.row(r0 + 2 * r), a.bytes.data(), a.stride, n_x, ref.data(), 1);
                            for (int j = 0; j < n_x; ++j) {
                                const float g = got[size_t(j * (kRows + 1) + r)];
                                ASSERT_EQ(std::memcmp(&g, &one[size_t(j)], sizeof(float)), 0)
                                    << label(dtype, level) << " K=" << k << " row " << r0 + 2 * r << " n_x=" << n_x
                                    << " x " << j << ": " << g << " vs " << one[size_t(j)];
                                if (scalar_bits) {
                                    ASSERT_EQ(std::memcmp(&g, &ref[size_t(j)], sizeof(float)), 0)
                                        << label(dtype, level) << " vs scalar, K=" << k << " row " << r0 + 2 * r
                                        << " x " << j << ": " << g << " vs " << ref[size_t(j)];
                                }
                                ++n_checked;
                            }
                        }
                    }
                }
            }
        }
    }
#if defined(__x86_64__) || defined(__i386__)
    if (supported(Level::kAvx2)) {
        // Q4_0, Q8_0, F16, BF16, kI4Z, NF4, FP4 x 3 K x (1+2+3+4+5+9+16) x 3 starts x 8 rows
        EXPECT_GE(n_checked, 7 * 3 * 40 * 24);
    }
#endif
}

// Extreme levels: weights at their most negative level (Q4_0 -8, Q8_0 -128) against activations of ±127 keep
// the integer sums exact in the rows dots (no int16 overflow in the Q4_0 tree, no saturation in maddubs).
TEST(Qdot, RowsDotsExactAtExtremeLevels) {
    for (DType dtype : {DType::kQ4_0, DType::kQ8_0}) {
        const DotRowsFn rows = find_dot_rows(dtype, Level::kAvx2);
        if (!supported(Level::kAvx2) || !rows) continue;
        const int64_t k = 64;
        const uint64_t row_bytes = *dtype_row_bytes(dtype, uint64_t(k));
        std::vector<uint8_t> wb(row_bytes * kRows);
        for (int r = 0; r < kRows; ++r)
            for (int64_t b = 0; b < k / 32; ++b) {
                uint8_t* blk = wb.data() + r * row_bytes + b * (row_bytes / uint64_t(k / 32));
                const uint16_t one = 0x3C00; // f16 1.0
                std::memcpy(blk, &one, 2);
                if (dtype == DType::kQ4_0) {
                    std::memset(blk + 2, r % 2 ? 0x00 : 0xFF, 16); // levels -8 or +7
                } else {
                    std::memset(blk + 2, r % 2 ? 0x80 : 0x7F, 32); // levels -128 or +127
                }
            }
        for (int sign : {1, -1}) {
            std::vector<BlockQ8> xb(size_t(k / 32));
            for (auto& b : xb) {
                b.d = 1.0f;
                for (auto& q : b.qs) q = int8_t(127 * sign);
                b.s = float(32 * 127 * sign);
            }
            float got[kRows];
            rows(k, wb.data(), int64_t(row_bytes), xb.data(), int64_t(k / 32 * sizeof(BlockQ8)), 1, got, 1);
            for (int r = 0; r < kRows; ++r) {
                const int level = dtype == DType::kQ4_0 ? (r % 2 ? -8 : 7) : (r % 2 ? -128 : 127);
                EXPECT_EQ(got[r], float(k * level * 127 * sign)) << dtype_name(dtype) << " row " << r;
            }
        }
    }
}

// kI4Z / kI8Z / NF4 / FP4 rows of raw random blocks: any nibbles, f16 scales over a wide range, fractional zero points
// (HQQ stores any f16 z), absmax 0 in some blocks. Everything the repack can produce, not only what quantize_row makes.
std::vector<uint8_t> random_packed4_rows(DType dtype, int64_t n, int64_t k, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> u01(0.0f, 1.0f);
    const uint64_t row_bytes = *dtype_row_bytes(dtype, uint64_t(k));
    std::vector<uint8_t> out(row_bytes * uint64_t(n));
    for (int64_t r = 0; r < n; ++r) {
        uint8_t* row = out.data() + uint64_t(r) * row_bytes;
        if (dtype == DType::kI4Z) {
            for (int64_t b = 0; b < k / 32; ++b) {
                scheme::packed4::BlockI4Z blk;
                blk.d = f32_to_f16(std::ldexp(0.5f + u01(rng), -int(u01(rng) * 12.0f) - 2)); // 2^-14 .. 0.375
                blk.z = f32_to_f16(u01(rng) * 16.0f - 0.5f);                                 // -0.5 .. 15.5
                for (auto& q : blk.qs) q = uint8_t(byte(rng));
                std::memcpy(row + b * int64_t(sizeof blk), &blk, sizeof blk);
            }
        } else if (dtype == DType::kI8Z) {
            for (int64_t b = 0; b < k / 32; ++b) {
                scheme::packed4::BlockI8Z blk;
                blk.d = f32_to_f16(std::ldexp(0.5f + u01(rng), -int(u01(rng) * 12.0f) - 6)); // 2^-18 .. 0.02
                blk.z = f32_to_f16(u01(rng) * 256.0f - 0.5f);                                // -0.5 .. 255.5
                for (auto& q : blk.qs) q = uint8_t(byte(rng));
                std::memcpy(row + b * int64_t(sizeof blk), &blk, sizeof blk);
            }
        } else {
            for (int64_t b = 0; b < k / 64; ++b) {
                scheme::packed4::BlockF4x64 blk;
                blk.absmax = b % 7 == 3 ? 0.0f : u01(rng) * 0.3f;
                for (auto& q : blk.qs) q = uint8_t(byte(rng));
                std::memcpy(row + b * int64_t(sizeof blk), &blk, sizeof blk);
            }
        }
    }
    return out;
}

// The AVX2 rows dots of the packed 4-bit types and their single-row dots against the scalar level, bit for bit, on
// random blocks: several K, n_x, first rows and row strides (1 and 3 rows: the rows of a matrix and a view).
TEST(Qdot, Packed4RowsDotsGiveTheScalarBits) {
    int n_checked = 0;
    for (DType dtype : {DType::kI4Z, DType::kNF4x64, DType::kFP4x64, DType::kI8Z}) {
        const DotRowsFn rows = find_dot_rows(dtype, Level::kAvx2);
        const DotFn dot = find_dot(dtype, Level::kAvx2), scalar = find_dot(dtype, Level::kScalar);
        if (!supported(Level::kAvx2)) continue;
#if defined(__x86_64__)
        ASSERT_NE(rows, nullptr) << dtype_name(dtype); // built on every x86-64
#endif
        if (!rows) continue;
        ASSERT_NE(dot, nullptr);
        const int64_t blk = dtype_block_elems(dtype);
        for (int64_t k : {blk, 2 * blk, 7 * blk, int64_t(2048)}) {
            const int64_t n = 4 * kRows + 3;
            const uint64_t row_bytes = *dtype_row_bytes(dtype, uint64_t(k));
            const auto wb = random_packed4_rows(dtype, n, k, uint32_t(k) * 7 + uint32_t(dtype));
            const auto x = randn(size_t(kMaxX * k), uint32_t(k) + 71);
            const Act a = make_act(ActKind::kQ8, x, kMaxX, k);
            for (int64_t step : {int64_t(1), int64_t(3)})
                for (int64_t r0 : {int64_t(0), int64_t(5), int64_t(n - 1 - step * (kRows - 1))})
                    for (int n_x : {1, 2, 3, 4, 5, 8, kMaxX}) {
                        const uint8_t* w0 = wb.data() + uint64_t(r0) * row_bytes;
                        std::vector<float> got(size_t(n_x * kRows), NAN);
                        rows(k, w0, step * int64_t(row_bytes), a.bytes.data(), a.stride, n_x, got.data(), kRows);
                        for (int r = 0; r < kRows; ++r) {
                            const uint8_t* wr = w0 + uint64_t(step * r) * row_bytes;
                            std::vector<float> one(size_t(n_x), NAN), ref(size_t(n_x), NAN);
                            dot(k, wr, a.bytes.data(), a.stride, n_x, one.data(), 1);
                            scalar(k, wr, a.bytes.data(), a.stride, n_x, ref.data(), 1);
                            for (int j = 0; j < n_x; ++j) {
                                const float g = got[size_t(j * kRows + r)];
                                ASSERT_EQ(std::memcmp(&g, &ref[size_t(j)], sizeof(float)), 0)
                                    << dtype_name(dtype) << " rows vs scalar, K=" << k << " row " << r0 + step * r
                                    << " n_x=" << n_x << " x " << j << ": " << g << " vs " << ref[size_t(j)];
                                ASSERT_EQ(std::memcmp(&one[size_t(j)], &ref[size_t(j)], sizeof(float)), 0)
                                    << dtype_name(dtype) << " single vs scalar, K=" << k << " row " << r0 + step * r
                                    << " n_x=" << n_x << " x " << j << ": " << one[size_t(j)] << " vs "
                                    << ref[size_t(j)];
                                ++n_checked;
                            }
                        }
                    }
        }
    }
#if defined(__x86_64__)
    if (supported(Level::kAvx2)) {
        EXPECT_EQ(n_checked, 4 * 4 * 2 * 3 * 39 * kRows); // 4 types x 4 K x 2 strides x 3 starts x Σ n_x x 8 rows
    }
#endif
}

// Extreme levels of the packed 4-bit types against activations at the int8 extremes (-128, -127, +127): the
// integer trees of the 8-row dots must not overflow int16 (kI4Z: 16 · 15 · 128 per partial sum) nor saturate, so
// the result is the exact integer sum scaled as the scalar level does (its bits), and within 1e-6 of the exact
// value computed in double. kI8Z (the Q8_0 sign trick) at ±127 only: BlockQ8 never holds -128 (quantize_row_q8:
// |q| <= 127), and the trick would wrap there.
TEST(Qdot, Packed4RowsDotsExactAtExtremeLevels) {
    for (DType dtype : {DType::kI4Z, DType::kNF4x64, DType::kFP4x64, DType::kI8Z}) {
        const DotRowsFn rows = find_dot_rows(dtype, Level::kAvx2);
        if (!supported(Level::kAvx2) || !rows) continue;
        const DotFn scalar = find_dot(dtype, Level::kScalar);
        const bool affine = dtype == DType::kI4Z || dtype == DType::kI8Z;
        const int16_t* c16 = affine ? nullptr : packed4_code16_table(dtype);
        // The code indices with the smallest and the largest int16 code (NF4: 0 and 15; FP4: found in the table).
        int lo_code = 0, hi_code = 15;
        if (c16)
            for (int c = 0; c < 16; ++c) {
                if (c16[c] < c16[lo_code]) lo_code = c;
                if (c16[c] > c16[hi_code]) hi_code = c;
            }
        const int64_t k = 256;
        const uint64_t row_bytes = *dtype_row_bytes(dtype, uint64_t(k));
        std::vector<uint8_t> wb(row_bytes * kRows);
        for (int r = 0; r < kRows; ++r) {
            const int code = r % 2 ? lo_code : hi_code;
            const uint8_t both = uint8_t(code | (code << 4));
            uint8_t* row = wb.data() + uint64_t(r) * row_bytes;
            if (dtype == DType::kI4Z) {
                for (int64_t b = 0; b < k / 32; ++b) {
                    scheme::packed4::BlockI4Z blk;
                    blk.d = f32_to_f16(1.0f);
                    blk.z = f32_to_f16(r < 4 ? 0.0f : 8.0f); // levels 0 / 15, or -8 / 7
                    std::memset(blk.qs, both, sizeof blk.qs);
                    std::memcpy(row + b * int64_t(sizeof blk), &blk, sizeof blk);
                }
            } else if (dtype == DType::kI8Z) {
                for (int64_t b = 0; b < k / 32; ++b) {
                    scheme::packed4::BlockI8Z blk;
                    blk.d = f32_to_f16(1.0f);
                    blk.z = f32_to_f16(r < 4 ? 0.0f : 128.0f); // levels 0 / 255, or -128 / 127
                    std::memset(blk.qs, r % 2 ? 0 : 255, sizeof blk.qs);
                    std::memcpy(row + b * int64_t(sizeof blk), &blk, sizeof blk);
                }
            } else {
                for (int64_t b = 0; b < k / 64; ++b) {
                    scheme::packed4::BlockF4x64 blk;
                    blk.absmax = float(kCode16Scale); // scale 32767 · (1 / 32767): about 1
                    std::memset(blk.qs, both, sizeof blk.qs);
                    std::memcpy(row + b * int64_t(sizeof blk), &blk, sizeof blk);
                }
            }
        }
        for (int xq : {-128, -127, 127}) {
            if (dtype == DType::kI8Z && xq == -128) continue;
            std::vector<BlockQ8> xb(size_t(k / 32));
            for (auto& b : xb) {
                b.d = 1.0f;
                for (auto& q : b.qs) q = int8_t(xq);
                b.s = float(32 * xq);
            }
            float got[kRows];
            rows(k, wb.data(), int64_t(row_bytes), xb.data(), int64_t(k / 32 * sizeof(BlockQ8)), 1, got, 1);
            for (int r = 0; r < kRows; ++r) {
                const int code = r % 2 ? lo_code : hi_code;
                double level;
                if (dtype == DType::kI4Z) {
                    level = code - (r < 4 ? 0.0 : 8.0);
                } else if (dtype == DType::kI8Z) {
                    level = (r % 2 ? 0.0 : 255.0) - (r < 4 ? 0.0 : 128.0);
                } else {
                    level = double(c16[code]) * double(float(kCode16Scale) * kInvCode16Scale);
                }
                const double want = double(k) * level * xq;
                float ref;
                scalar(k, wb.data() + uint64_t(r) * row_bytes, xb.data(), 0, 1, &ref, 1);
                EXPECT_EQ(std::memcmp(&got[r], &ref, sizeof(float)), 0)
                    << dtype_name(dtype) << " row " << r << " x " << xq << ": " << got[r] << " vs " << ref;
                EXPECT_NEAR(got[r], want, 1e-6 * std::fabs(want)) << dtype_name(dtype) << " row " << r << " x " << xq;
            }
        }
    }
}

// (b) the matmul at every level against ref::matmul on f32 x.
// k-quant rows of raw random super-blocks: any level, scale and min bits (Q6_K scales -128..127), f16 d / dmin
// over a wide range; every 5th block at the extremes (all levels and 6-bit scales / mins at their maximum, or Q6_K at
// level -32 with scale -128). Not only what quantize_row makes.
std::vector<uint8_t> random_kquant_rows(DType dtype, int64_t n, int64_t k, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> u01(0.0f, 1.0f);
    const uint64_t row_bytes = *dtype_row_bytes(dtype, uint64_t(k));
    const uint64_t blk_bytes = row_bytes / uint64_t(k / 256);
    std::vector<uint8_t> out(row_bytes * uint64_t(n));
    for (uint64_t b = 0; b < out.size() / blk_bytes; ++b) {
        uint8_t* blk = out.data() + b * blk_bytes;
        const int mode = b % 5 == 2 ? 1 : b % 5 == 4 ? 2 : 0; // 0 random, 1 all bits set, 2 all clear
        for (uint64_t i = 0; i < blk_bytes; ++i) blk[i] = mode == 0 ? uint8_t(byte(rng)) : mode == 1 ? 0xFF : 0x00;
        const uint16_t d = f32_to_f16(std::ldexp(0.5f + u01(rng), -int(u01(rng) * 10.0f) - 4));
        const uint16_t dmin = f32_to_f16(std::ldexp(0.5f + u01(rng), -int(u01(rng) * 10.0f) - 4));
        if (dtype == DType::kQ6_K) {
            auto* q = reinterpret_cast<scheme::q6_k::Block*>(blk);
            if (mode == 2) std::memset(q->scales, 0x80, sizeof q->scales); // level -32, scale -128
            std::memcpy(&q->d, &d, 2);
        } else if (dtype == DType::kQ4_K) {
            auto* q = reinterpret_cast<scheme::q4_k::Block*>(blk);
            std::memcpy(&q->d, &d, 2);
            std::memcpy(&q->dmin, &dmin, 2);
        }
    }
    return out;
}

// (e) the AVX2 k-quant register tiles (n_x >= 2: one weight row against 4 activation rows at a time, Q4_K and Q6_K;
// the plain AVX2 build and, where the CPU has it, the AVX-VNNI one) on raw random blocks, against the
// single-activation-row dot bit for bit and against the plain reference (weights dequantized by the scheme row,
// activations d * q, summed in double) within 1e-5 of Σ|w_i x_i|, activations random or at the int8 extremes (±127, and
// -128 which quantize_row_q8k never makes but the integer path allows).
TEST(Qdot, KQuantTilesMatchSingleRowBitsAndReference) {
    int n_checked = 0;
    for (DType dtype : {DType::kQ4_K, DType::kQ6_K}) {
        const auto* s = scheme::find_scheme(dtype);
        // Every level this CPU runs, and the AVX2 k-quant dots both without and with AVX-VNNI where it can.
        std::vector<std::pair<std::string, DotFn>> dots;
        for (Level level : kLevels)
            if (supported(level) && find_dot(dtype, level))
                dots.emplace_back(level_name(level), find_dot(dtype, level));
        if (supported(Level::kAvx2) && find_dot_kquant_avx2_at(dtype, false))
            dots.emplace_back("avx2-plain", find_dot_kquant_avx2_at(dtype, false));
        if (has_avx_vnni() && find_dot_kquant_avx2_at(dtype, true))
            dots.emplace_back("avx2-vnni", find_dot_kquant_avx2_at(dtype, true));
        for (const auto& [name, dot] : dots) {
            const std::string lbl = std::string(dtype_name(dtype)) + " @" + name;
            for (int64_t k : {int64_t(256), int64_t(512), int64_t(2560)}) {
                const int64_t n = 7;
                const uint64_t row_bytes = *dtype_row_bytes(dtype, uint64_t(k));
                const auto wb = random_kquant_rows(dtype, n, k, uint32_t(k) + 3 * uint32_t(dtype));
                std::vector<float> deq(size_t(n * k));
                for (int64_t r = 0; r < n; ++r)
                    s->dequantize_row(wb.data() + uint64_t(r) * row_bytes, deq.data() + r * k, k);
                for (int extreme : {0, 1}) {
                    Act a = make_act(ActKind::kQ8K, randn(size_t(kMaxX * k), uint32_t(k) + 89), kMaxX, k);
                    if (extreme) { // activation rows j: all +127, all -127, all -128, alternating, …
                        for (int64_t j = 0; j < kMaxX; ++j)
                            for (int64_t b = 0; b < k / 256; ++b) {
                                auto* y = reinterpret_cast<BlockQ8K*>(a.bytes.data() + j * a.stride) + b;
                                for (int e = 0; e < 256; ++e) {
                                    const int v = j % 4 == 0   ? 127
                                                  : j % 4 == 1 ? -127
                                                  : j % 4 == 2 ? -128
                                                               : (e % 2 ? 127 : -128);
                                    y->qs[e] = int8_t(v);
                                    a.deq[size_t(j * k + b * 256 + e)] = y->d * float(v);
                                }
                                for (int g = 0; g < 16; ++g) {
                                    int sum = 0;
                                    for (int e = 0; e < 16; ++e) sum += y->qs[16 * g + e];
                                    y->bsums[g] = int16_t(sum);
                                }
                            }
                    }
                    for (int64_t r = 0; r < n; ++r) {
                        const uint8_t* wr = wb.data() + uint64_t(r) * row_bytes;
                        std::vector<float> alone(size_t(kMaxX), NAN);
                        for (int j = 0; j < kMaxX; ++j)
                            dot(k, wr, a.bytes.data() + j * a.stride, a.stride, 1, &alone[size_t(j)], 1);
                        for (int j = 0; j < kMaxX; ++j) {
                            double want = 0, mag = 0;
                            for (int64_t i = 0; i < k; ++i) {
                                const double p = double(deq[size_t(r * k + i)]) * a.deq[size_t(j * k + i)];
                                want += p, mag += std::fabs(p);
                            }
                            ASSERT_NEAR(alone[size_t(j)], want, 1e-5 * mag + 1e-30)
                                << lbl << " K=" << k << " row " << r << " x " << j;
                        }
                        for (int n_x : {2, 3, 4, 5, 6, 7, 8, 11, kMaxX}) {
                            std::vector<float> got(size_t(2 * n_x), NAN);
                            dot(k, wr, a.bytes.data(), a.stride, n_x, got.data(), 2); // out_stride 2
                            for (int j = 0; j < n_x; ++j) {
                                ASSERT_EQ(std::memcmp(&got[size_t(2 * j)], &alone[size_t(j)], sizeof(float)), 0)
                                    << lbl << " K=" << k << " row " << r << " n_x=" << n_x << " x " << j
                                    << (extreme ? " extreme" : "") << ": " << got[size_t(2 * j)] << " vs "
                                    << alone[size_t(j)];
                                ++n_checked;
                            }
                            EXPECT_TRUE(std::isnan(got[1])) << "wrote between outputs";
                        }
                    }
                }
            }
        }
    }
    EXPECT_GE(n_checked, 2 * 3 * 2 * 7 * 62); // 2 types x 3 K x 2 activation kinds x 7 rows x Σ n_x, scalar at least
#if defined(__x86_64__)
    if (supported(Level::kAvx2)) {
        // x86-64: the plain AVX2 tiles always, the AVX-VNNI build too where this CPU has it (2 more variants' checks).
        EXPECT_GE(n_checked, (has_avx_vnni() ? 4 : 3) * 2 * 3 * 2 * 7 * 62);
    }
#endif
}

TEST(Qdot, MatmulMatchesRefWithinActivationRounding) {
    ThreadPool pool(2);
    for (DType dtype : kDtypes) {
        ActKind kind;
        ASSERT_TRUE(act_kind(dtype, &kind));
        const int64_t k = 512, n = 67; // 67: not a multiple of the 16-row tile nor of the thread split
        const auto w = make_weights(dtype, n, k, 23);
        const auto bias = randn(size_t(n), 29, 0.1f);
        for (int64_t m : {1, 3, 16, 32, 37}) {
            const auto x = randn(size_t(m * k), uint32_t(m) + 31);
            const Act a = make_act(kind, x, m, k);
            for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
                std::vector<float> want(size_t(m * n));
                ref::matmul(x.data(), m, w.view, b, want.data(), nullptr);
                double expected_err2 = 0, norm2 = 0;
                for (int64_t i = 0; i < m; ++i)
                    for (int64_t r = 0; r < n; ++r) {
                        norm2 += double(want[size_t(i * n + r)]) * want[size_t(i * n + r)];
                        for (int64_t e = 0; e < k; ++e) {
                            const double wd = double(w.deq[size_t(r * k + e)]) * a.scale[size_t(i * k + e)];
                            expected_err2 += wd * wd / 12.0;
                        }
                    }
                for (Level level : kLevels) {
                    if (!supported(level) || !find_dot(dtype, level)) continue;
                    std::vector<float> got(want.size(), NAN);
                    ASSERT_TRUE(matmul_qdot_at(level, x.data(), m, w.view, b, got.data(), &pool));
                    double err2 = 0;
                    for (size_t i = 0; i < got.size(); ++i) err2 += (double(got[i]) - want[i]) * (got[i] - want[i]);
                    const std::string what = label(dtype, level) + " m=" + std::to_string(m) + (b ? " bias" : "");
                    if (kind == ActKind::kF32) {
                        EXPECT_LT(err2 / norm2, 1e-10) << what;
                        continue;
                    }
                    EXPECT_LE(err2, 4.0 * expected_err2) << what;
                    EXPECT_LE(std::sqrt(err2 / norm2), 1e-2) << what;
                }
            }
        }
    }
}

TEST(Qdot, KernelTableUsesQdotRows) {
    for (DType dtype : kDtypes) {
        const KernelRow* row = find_kernel(Op::kMatmul, dtype, Backend::kCpu);
        ASSERT_NE(row, nullptr);
        EXPECT_EQ(std::string(row->name), "cpu::qdot_" + std::string(dtype_name(dtype)));
        ActKind kind;
        ASSERT_TRUE(act_kind(dtype, &kind));
        EXPECT_EQ(row->quantizes_activations, kind != ActKind::kF32) << dtype_name(dtype);
        EXPECT_NE(find_kernel(Op::kMatmul, dtype, Backend::kRef)->backend, Backend::kCpu); // ref/ unchanged
    }
}

} // namespace
} // namespace lowbit::kernel::cpu::qdot
