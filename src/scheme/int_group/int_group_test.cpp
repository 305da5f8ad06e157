// SPDX-License-Identifier: MIT
// Integer groups: bit-stream packing round trip for every width, hand example, RMSE bounds, records, bad input.
#include "core/half.h"
#include "scheme/int_group/int_group.h"

#include <cmath>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::scheme::int_group {
namespace {

std::vector<float> gaussian(int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng);
    return v;
}

TEST(IntGroup, PutGetCodesEveryWidth) {
    for (int bits : {2, 3, 4, 8}) {
        const int64_t n = 101;
        std::vector<uint32_t> words(static_cast<size_t>((n * bits + 31) / 32), 0u);
        std::mt19937 rng(static_cast<uint32_t>(bits));
        std::vector<uint32_t> q(static_cast<size_t>(n));
        for (int64_t j = 0; j < n; ++j) {
            q[size_t(j)] = rng() & ((1u << bits) - 1u);
            put_code(words.data(), j, bits, q[size_t(j)]);
        }
        for (int64_t j = 0; j < n; ++j) EXPECT_EQ(get_code(words.data(), j, bits), q[size_t(j)]) << bits << " " << j;
    }
    // 3-bit code 10 straddles words 0 and 1: bits 30..32.
    std::vector<uint32_t> w(2, 0u);
    put_code(w.data(), 10, 3, 7u);
    EXPECT_EQ(w[0], 3u << 30);
    EXPECT_EQ(w[1], 1u);
}

TEST(IntGroup, HandComputedAsymmetricGroup) {
    // Group of 4, 2 bits: lo = -1, hi = 2 -> scale 1, zero round(1) = 1; codes round(w) + 1.
    const std::vector<float> w = {-1.0f, 0.4f, 0.6f, 2.0f};
    auto t = quantize_rtn(w.data(), 1, 4, IntGroupParams{2, 4, false});
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(f16_to_f32(t->scales[0]), 1.0f);
    EXPECT_EQ(t->zeros[0], 1);
    EXPECT_EQ(t->qweight[0], 0u | (1u << 2) | (2u << 4) | (3u << 6));
    std::vector<float> out(4);
    dequantize(*t, out.data());
    EXPECT_EQ(out, (std::vector<float>{-1.0f, 0.0f, 1.0f, 2.0f}));
}

TEST(IntGroup, RmseBoundsAndRecordsRoundTrip) {
    const int64_t rows = 64, cols = 512;
    const auto w = gaussian(rows * cols, 9);
    for (int bits : {2, 3, 4, 8})
        for (bool sym : {false, true})
            for (int64_t g : {int64_t(128), int64_t(32), int64_t(-1)}) {
                auto t = quantize_rtn(w.data(), rows, cols, IntGroupParams{bits, g, sym});
                ASSERT_TRUE(t.ok()) << t.error().message;
                std::vector<float> out(w.size());
                dequantize(*t, out.data());
                double se = 0, s2 = 0;
                for (size_t i = 0; i < w.size(); ++i) {
                    se += double(w[i] - out[i]) * double(w[i] - out[i]);
                    s2 += double(w[i]) * double(w[i]);
                }
                const double e = std::sqrt(se / s2);
                if (g == 128) {
                    EXPECT_LT(e, max_rmse(bits, sym)) << bits << " bits sym " << sym;
                    EXPECT_GT(e, max_rmse(bits, sym) * 0.5) << bits << " bits sym " << sym;
                }
                auto back = from_records(to_records(*t), t->params, rows, cols);
                ASSERT_TRUE(back.ok()) << back.error().message;
                std::vector<float> out2(w.size());
                dequantize(*back, out2.data());
                EXPECT_EQ(out, out2);
                EXPECT_EQ(back->qweight, t->qweight);
            }
}

TEST(IntGroup, BadParams) {
    const std::vector<float> w(256, 0.5f);
    auto r1 = quantize_rtn(w.data(), 2, 128, IntGroupParams{5, 64, false});
    ASSERT_FALSE(r1.ok());
    EXPECT_EQ(r1.error().code, ErrorCode::kUsage);
    EXPECT_NE(r1.error().message.find("bits"), std::string::npos);
    auto r2 = quantize_rtn(w.data(), 2, 128, IntGroupParams{4, 48, false});
    ASSERT_FALSE(r2.ok());
    EXPECT_NE(r2.error().message.find("divide the row length 128"), std::string::npos);
    std::vector<float> bad = w;
    bad[7] = NAN;
    EXPECT_EQ(quantize_rtn(bad.data(), 2, 128, IntGroupParams{}).error().code, ErrorCode::kBadInput);
    auto t = quantize_rtn(w.data(), 2, 128, IntGroupParams{4, 64, false});
    ASSERT_TRUE(t.ok());
    auto recs = to_records(*t);
    recs.pop_back(); // zeros
    auto r3 = from_records(recs, t->params, 2, 128);
    ASSERT_FALSE(r3.ok());
    EXPECT_NE(r3.error().message.find("zeros"), std::string::npos);
}

} // namespace
} // namespace lowbit::scheme::int_group
