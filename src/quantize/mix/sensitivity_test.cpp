// SPDX-License-Identifier: MIT
#include "quantize/mix/sensitivity.h"

#include <gtest/gtest.h>
#include <random>
#include <vector>

namespace lowbit::quantize::mix {
namespace {

TEST(MixSensitivity, FewerBitsMoreErrorAndImportanceWeights) {
    const int64_t n_rows = 16, n = 512;
    std::mt19937 rng(5);
    std::normal_distribution<float> nd;
    std::vector<float> w(static_cast<size_t>(n_rows * n));
    for (auto& v : w) v = nd(rng);
    double prev = 1e300;
    for (DType t : {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kQ8_0}) {
        auto e = weighted_error(t, w.data(), n_rows, n, nullptr);
        ASSERT_TRUE(e.ok()) << e.error().message;
        EXPECT_GT(*e, 0.0);
        EXPECT_LT(*e, prev) << dtype_name(t);
        prev = *e;
    }
    // Uniform importance 2 doubles the error of uniform importance 1 (same quantized values: the quantizer's
    // choice is scale-invariant in the importance).
    const std::vector<float> one(static_cast<size_t>(n), 1.0f), two(static_cast<size_t>(n), 2.0f);
    auto e1 = weighted_error(DType::kQ4_K, w.data(), n_rows, n, one.data());
    auto e2 = weighted_error(DType::kQ4_K, w.data(), n_rows, n, two.data());
    ASSERT_TRUE(e1.ok() && e2.ok());
    EXPECT_NEAR(*e2, 2.0 * *e1, 1e-3 * *e1);
    auto bad = weighted_error(DType::kQ4_K, w.data(), 1, 100, nullptr);
    ASSERT_FALSE(bad.ok());
}

} // namespace
} // namespace lowbit::quantize::mix
