// SPDX-License-Identifier: MIT
// LLM.int8 rows: hand example, RMSE bound, records round trip, bad records.
#include "scheme/llm_int8/llm_int8.h"

#include <cmath>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::scheme::llm_int8 {
namespace {

TEST(LlmInt8, HandComputedRow) {
    const std::vector<float> w = {2.0f, -1.0f, 0.5f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    auto t = quantize(w.data(), 2, 4);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->scb[0], 2.0f);
    EXPECT_EQ(t->weight[0], 127);
    EXPECT_EQ(t->weight[1], -64); // -63.5 rounds half to even
    EXPECT_EQ(t->weight[2], 32);  // 31.75
    EXPECT_EQ(t->scb[1], 0.0f);   // all-zero row: codes 0, no NaN
    std::vector<float> out(8);
    dequantize(*t, out.data());
    EXPECT_FLOAT_EQ(out[0], 2.0f);
    EXPECT_EQ(out[4], 0.0f);
}

TEST(LlmInt8, RmseBoundAndRecords) {
    const int64_t rows = 32, cols = 4096;
    std::mt19937 rng(2);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> w(static_cast<size_t>(rows * cols));
    for (float& x : w) x = d(rng);
    auto t = quantize(w.data(), rows, cols);
    ASSERT_TRUE(t.ok());
    std::vector<float> out(w.size());
    dequantize(*t, out.data());
    double se = 0, s2 = 0;
    for (size_t i = 0; i < w.size(); ++i) {
        se += double(w[i] - out[i]) * double(w[i] - out[i]);
        s2 += double(w[i]) * double(w[i]);
    }
    EXPECT_LT(std::sqrt(se / s2), kMaxRmse);
    EXPECT_GT(std::sqrt(se / s2), kMaxRmse * 0.5);
    const auto recs = to_records(*t);
    auto back = from_records(recs);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->weight, t->weight);
    EXPECT_EQ(back->scb, t->scb);
    auto bad = recs;
    bad[1].bytes.resize(4);
    bad[1].shape = Shape{1};
    auto r = from_records(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("SCB"), std::string::npos);
    auto fmt_bad = recs;
    fmt_bad[2].bytes[0] = 2;
    EXPECT_EQ(from_records(fmt_bad).error().code, ErrorCode::kUnsupported);
    EXPECT_EQ(quantize(w.data(), 0, 4).error().code, ErrorCode::kUsage);
}

} // namespace
} // namespace lowbit::scheme::llm_int8
