// SPDX-License-Identifier: MIT
// Registry-driven tests: every row of the scheme table with a quantizer gets the same checks (ggml's
// test-quantize-fns): RMSE/sigma on Gaussian rows under the row's bound, deterministic bytes, a stable
// second round trip, zero rows decode to zero, and row lengths are multiples of the block only.
#include "scheme/scheme_list.h"

#include <cmath>
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <vector>

namespace lowbit::scheme {
namespace {

std::vector<float> gaussian_row(int64_t n, uint32_t seed, float sigma) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, sigma);
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = nd(rng);
    return x;
}

double rel_rmse(const std::vector<float>& x, const std::vector<float>& y) {
    double e = 0, v = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        e += double(x[i] - y[i]) * double(x[i] - y[i]);
        v += double(x[i]) * double(x[i]);
    }
    return v > 0 ? std::sqrt(e / v) : std::sqrt(e);
}

struct RoundTrip {
    std::vector<uint8_t> bytes;
    std::vector<float> values;
};

RoundTrip round_trip(const SchemeTraits& s, const std::vector<float>& x, const float* importance = nullptr) {
    const int64_t n = static_cast<int64_t>(x.size());
    RoundTrip r;
    r.bytes.assign(dtype_row_bytes(s.dtype, static_cast<uint64_t>(n)).value(), 0xAB);
    r.values.assign(x.size(), 0.f);
    s.quantize_row(x.data(), r.bytes.data(), n, importance);
    s.dequantize_row(r.bytes.data(), r.values.data(), n);
    return r;
}

// Row lengths: 1 block, 3 blocks, and a 4096-wide row (rounded to the block).
std::vector<int64_t> row_lengths(DType t) {
    const int64_t b = dtype_block_elems(t);
    return {b, 3 * b, (4096 / b) * b};
}

std::string name_of(const SchemeTraits& s) {
    return std::string(dtype_name(s.dtype));
}

TEST(SchemeList, RowsAreInDTypeOrderAndFindable) {
    const auto rows = all_schemes();
    ASSERT_FALSE(rows.empty());
    for (size_t i = 0; i < rows.size(); ++i) {
        EXPECT_EQ(find_scheme(rows[i].dtype), &rows[i]) << name_of(rows[i]);
        EXPECT_NE(rows[i].dequantize_row, nullptr) << name_of(rows[i]);
        if (i > 0) {
            EXPECT_LT(static_cast<int>(rows[i - 1].dtype), static_cast<int>(rows[i].dtype));
        }
    }
    EXPECT_EQ(find_scheme(DType::kIQ2_XXS), nullptr);
}

TEST(SchemeList, GaussianRmseUnderBound) {
    for (const auto& s : all_schemes()) {
        if (!s.quantize_row) continue;
        uint32_t seed = 1;
        for (const int64_t n : row_lengths(s.dtype)) {
            for (const float sigma : {0.02f, 1.0f}) {
                const auto x = gaussian_row(n, seed++, sigma);
                const auto r = round_trip(s, x);
                EXPECT_LE(rel_rmse(x, r.values), s.max_rmse) << name_of(s) << " n=" << n << " sigma=" << sigma;
            }
        }
    }
}

TEST(SchemeList, ImportanceKeepsErrorUnderBound) {
    for (const auto& s : all_schemes()) {
        if (!s.quantize_row) continue;
        const int64_t n = row_lengths(s.dtype).back();
        const auto x = gaussian_row(n, 77, 0.05f);
        std::vector<float> importance(static_cast<size_t>(n));
        std::mt19937 rng(5);
        std::uniform_real_distribution<float> ud(0.1f, 10.f);
        for (auto& w : importance) w = ud(rng);
        const auto r = round_trip(s, x, importance.data());
        EXPECT_LE(rel_rmse(x, r.values), s.max_rmse) << name_of(s);
    }
}

TEST(SchemeList, DeterministicAndStableRoundTrip) {
    for (const auto& s : all_schemes()) {
        if (!s.quantize_row) continue;
        const int64_t n = row_lengths(s.dtype)[1];
        const auto x = gaussian_row(n, 11, 0.5f);
        const auto a = round_trip(s, x);
        const auto b = round_trip(s, x);
        EXPECT_EQ(a.bytes, b.bytes) << name_of(s) << ": quantization is not deterministic";
        // Re-quantizing decoded values must not drift further than the first pass did.
        const auto c = round_trip(s, a.values);
        EXPECT_LE(rel_rmse(a.values, c.values), rel_rmse(x, a.values) + 1e-6) << name_of(s);
        std::vector<float> again(a.values.size());
        s.dequantize_row(a.bytes.data(), again.data(), n);
        EXPECT_EQ(again, a.values) << name_of(s) << ": dequantize is not deterministic";
    }
}

TEST(SchemeList, ZeroRowDecodesToZero) {
    for (const auto& s : all_schemes()) {
        if (!s.quantize_row) continue;
        const std::vector<float> x(static_cast<size_t>(row_lengths(s.dtype)[1]), 0.f);
        const auto r = round_trip(s, x);
        for (const float v : r.values) ASSERT_EQ(v, 0.f) << name_of(s);
    }
}

TEST(SchemeList, RowLengthsAreBlockMultiples) {
    for (const auto& s : all_schemes()) {
        const int64_t b = dtype_block_elems(s.dtype);
        EXPECT_TRUE(dtype_row_bytes(s.dtype, static_cast<uint64_t>(2 * b)).has_value()) << name_of(s);
        if (b > 1) {
            EXPECT_FALSE(dtype_row_bytes(s.dtype, static_cast<uint64_t>(b + 1)).has_value()) << name_of(s);
            EXPECT_FALSE(dtype_row_bytes(s.dtype, static_cast<uint64_t>(b / 2)).has_value()) << name_of(s);
        }
    }
}

} // namespace
} // namespace lowbit::scheme
