// SPDX-License-Identifier: MIT
// The quantization fast paths (quant_rows.h) against the scheme references, bit for bit: each AVX2 row quantizer
// on random rows (normal, uniform, heavy-tailed, tiny and huge scales) and on edge blocks (all zero, -0.0, one
// non-zero value, a constant block, the largest magnitude twice with both signs, exact .5 ties for Q8_0's rounding,
// groups below ggml's GROUP_MAX_EPS, subnormals), every byte compared; the f16 decode + non-finite check against
// the scalar level (values, and the first Inf/NaN index). Levels this CPU lacks are skipped.
#include "core/half.h"
#include "kernel/cpu/quant/quant_rows.h"
#include "scheme/scheme_list.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace lowbit::kernel::cpu::quant {
namespace {

using qdot::Level;

const DType kFastTypes[] = {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K};

// Rows of n values (n a multiple of 256) of several kinds, concatenated.
std::vector<float> test_rows(int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<float> v;
    auto add_row = [&](auto gen) {
        for (int64_t i = 0; i < n; ++i) v.push_back(gen(i));
    };
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
    std::cauchy_distribution<float> cd(0.0f, 0.01f);
    add_row([&](int64_t) { return nd(rng); });
    add_row([&](int64_t) { return 0.02f * nd(rng); });
    add_row([&](int64_t) { return ud(rng) + 0.5f; }); // mostly positive (Q4_K mins at 0)
    add_row([&](int64_t) { return ud(rng) - 0.7f; }); // mostly negative
    add_row([&](int64_t) { return cd(rng); });
    add_row([&](int64_t) { return 1e-20f * nd(rng); });                  // below GROUP_MAX_EPS
    add_row([&](int64_t) { return 3e4f * nd(rng); });                    // large
    add_row([&](int64_t) { return 1e-41f * ud(rng); });                  // subnormal
    add_row([&](int64_t) { return std::round(nd(rng) * 4.0f) / 4.0f; }); // few distinct values, many ties
    // Edge blocks, 32 values each, repeated across a row.
    const int64_t n_edges = 12;
    for (int64_t b = 0; b < n / 32; ++b) {
        const int kind = static_cast<int>(b % n_edges);
        for (int j = 0; j < 32; ++j) {
            float x = nd(rng);
            switch (kind) {
            case 0:
                x = 0.0f;
                break;
            case 1:
                x = -0.0f;
                break;
            case 2:
                x = j == 7 ? -3.0f : 0.0f;
                break;
            case 3:
                x = 1.25f;
                break;
            case 4:
                x = -2.5f;
                break;
            case 5:
                x = j == 3 ? 2.0f : (j == 20 ? -2.0f : 0.5f * x);
                break; // |max| twice, + first
            case 6:
                x = j == 3 ? -2.0f : (j == 20 ? 2.0f : 0.5f * x);
                break; // |max| twice, - first
            case 7:
                x = j == 0 ? 127.0f : static_cast<float>(j) - 16.5f;
                break; // Q8_0: id = 1, exact .5 ties
            case 8:
                x = j == 0 ? -127.0f : 0.5f - static_cast<float>(j % 5);
                break;
            case 9:
                x = j % 2 ? 1e-30f : -1e-30f;
                break;
            case 10:
                x = static_cast<float>(j % 16) - 8.0f;
                break; // Q4_0 exact levels
            default:
                x = nd(rng) * (j < 16 ? 1.0f : 1e-3f);
                break;
            }
            v.push_back(x);
        }
    }
    return v;
}

TEST(QuantRows, FastQuantizersGiveTheReferenceBytes) {
    if (!qdot::supported(Level::kAvx2)) GTEST_SKIP() << "no AVX2 on this CPU";
    for (const int64_t n : {int64_t{256}, int64_t{2048}}) {
        const std::vector<float> x = test_rows(n, 1234u + static_cast<uint32_t>(n));
        const int64_t n_rows = static_cast<int64_t>(x.size()) / n;
        for (const DType t : kFastTypes) {
            const QuantizeRowFn fast = find_quantize_row_plain(t, Level::kAvx2);
            ASSERT_NE(fast, nullptr) << dtype_name(t);
            EXPECT_EQ(find_quantize_row_plain(t, Level::kScalar), nullptr);
            const scheme::SchemeTraits* s = scheme::find_scheme(t);
            const uint64_t rb = *dtype_row_bytes(t, static_cast<uint64_t>(n));
            std::vector<uint8_t> want(rb), got(rb);
            for (int64_t r = 0; r < n_rows; ++r) {
                s->quantize_row(x.data() + r * n, want.data(), n, nullptr);
                std::memset(got.data(), 0xAB, rb);
                fast(x.data() + r * n, got.data(), n, nullptr);
                for (uint64_t k = 0; k < rb; ++k)
                    ASSERT_EQ(int(got[k]), int(want[k]))
                        << dtype_name(t) << " n=" << n << " row " << r << " byte " << k << " (block "
                        << k / (rb / static_cast<uint64_t>(n / dtype_block_elems(t))) << ")";
            }
        }
    }
}

// Many random super-blocks with per-group scales spread over decades: the k-quant searches' update branches.
TEST(QuantRows, KQuantSearchesMatchOnManyBlocks) {
    if (!qdot::supported(Level::kAvx2)) GTEST_SKIP() << "no AVX2 on this CPU";
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> ex(-6.0f, 2.0f);
    const int64_t n = 256 * 2048;
    std::vector<float> x(n);
    std::cauchy_distribution<float> cd(0.0f, 1.0f);
    for (int64_t g = 0; g < n / 16; ++g) {
        const float scale = std::pow(10.0f, ex(rng));
        const float shift = (g % 3 == 0) ? scale * nd(rng) : 0.0f;
        const bool heavy = g % 2 == 1; // Cauchy groups: where Q6_K's outermost candidate scales win most often
        for (int j = 0; j < 16; ++j) x[16 * g + j] = scale * (heavy ? cd(rng) : nd(rng)) + shift;
    }
    for (const DType t : {DType::kQ4_K, DType::kQ6_K, DType::kQ4_0, DType::kQ8_0}) {
        const uint64_t rb = *dtype_row_bytes(t, static_cast<uint64_t>(n));
        std::vector<uint8_t> want(rb), got(rb);
        scheme::find_scheme(t)->quantize_row(x.data(), want.data(), n, nullptr);
        find_quantize_row_plain(t, Level::kAvx2)(x.data(), got.data(), n, nullptr);
        EXPECT_EQ(std::memcmp(want.data(), got.data(), rb), 0) << dtype_name(t);
    }
}

TEST(QuantRows, F16DecodeIsExactAndFindsTheFirstNonFinite) {
    std::vector<uint16_t> h(1000 + 5);
    for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>((i * 2654435761u) >> 7);
    for (auto& v : h)
        if ((v & 0x7c00u) == 0x7c00u) v &= 0xbfffu; // all finite first
    for (const Level level : {Level::kScalar, Level::kAvx2}) {
        if (!qdot::supported(level)) continue;
        std::vector<float> out(h.size());
        EXPECT_EQ(decode_f16_row_checked(h.data(), out.data(), int64_t(h.size()), level), int64_t(h.size()));
        for (size_t i = 0; i < h.size(); ++i)
            ASSERT_EQ(f32_bits(out[i]), f32_bits(f16_to_f32(h[i]))) << "element " << i << " level " << int(level);
        for (const size_t bad : {size_t{0}, size_t{7}, size_t{8}, size_t{515}, h.size() - 1}) {
            for (const uint16_t special : {uint16_t{0x7c00}, uint16_t{0xfc00}, uint16_t{0x7e00}, uint16_t{0xfd01}}) {
                std::vector<uint16_t> g = h;
                g[bad] = special;
                if (bad + 3 < g.size()) g[bad + 3] = 0x7c00; // a later one does not win
                EXPECT_EQ(decode_f16_row_checked(g.data(), out.data(), int64_t(g.size()), level), int64_t(bad))
                    << "level " << int(level);
            }
        }
    }
}

} // namespace
} // namespace lowbit::kernel::cpu::quant
