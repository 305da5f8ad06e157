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

TEST(MixSensitivity, ResidualFactorsFollowTheStream) {
    // Two layers; signals chosen so that R = 1 (embd), then + 2 (o0) + 3 (down0) + 4 (o1) + 5 (down1).
    const std::vector<std::string> names = {
        "token_embd.weight",     "blk.0.attn_q.weight", "blk.0.attn_output.weight", "blk.0.ffn_up.weight",
        "blk.0.ffn_down.weight", "blk.1.attn_v.weight", "blk.1.attn_output.weight", "blk.1.ffn_gate.weight",
        "blk.1.ffn_down.weight", "output.weight"};
    const std::vector<double> signal = {1, 10, 2, 20, 3, 40, 4, 50, 5, 100};
    const auto f = residual_factors(names, signal);
    ASSERT_TRUE(f.has_value());
    const std::vector<double> want = {1.0,                // token_embd: relative to itself
                                      2.0 / (10.0 * 1.0), // q0 through o0, R = 1
                                      1.0 / 1.0,          // o0 adds to R = 1
                                      3.0 / (20.0 * 3.0), // up0 through down0, R = 1 + 2
                                      1.0 / 3.0,          // down0
                                      4.0 / (40.0 * 6.0), // v1 through o1, R = 6
                                      1.0 / 6.0,          // o1
                                      5.0 / (50.0 * 10.0),
                                      1.0 / 10.0,
                                      1.0 / 15.0}; // output after every writer
    ASSERT_EQ(f->size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR((*f)[i], want[i], 1e-12) << names[i];
    // The same tensors in another order give the same factors per name.
    std::vector<std::string> rev(names.rbegin(), names.rend());
    std::vector<double> rsig(signal.rbegin(), signal.rend());
    const auto g = residual_factors(rev, rsig);
    ASSERT_TRUE(g.has_value());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR((*g)[want.size() - 1 - i], want[i], 1e-12);
    // Names it does not model, a layer without a writer, no embedding: the caller keeps the raw proxy.
    auto bad = names;
    bad[3] = "blk.0.ffn_up_exps.weight";
    EXPECT_FALSE(residual_factors(bad, signal).has_value());
    EXPECT_FALSE(residual_factors({"token_embd.weight", "blk.0.attn_q.weight"}, {1, 1}).has_value());
    EXPECT_FALSE(residual_factors({"blk.0.attn_output.weight", "blk.0.ffn_down.weight"}, {1, 1}).has_value());
}

} // namespace
} // namespace lowbit::quantize::mix
