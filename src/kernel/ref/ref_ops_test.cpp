// SPDX-License-Identifier: MIT
// ref/ against closed forms: the oracle itself must be right.
#include "kernel/ref/ref_ops.h"

#include <cmath>
#include <gtest/gtest.h>
#include <vector>

namespace lowbit::kernel::ref {
namespace {

TEST(RefOps, MatmulSmallByHand) {
    const float w[6] = {1, 2, 3, 4, 5, 6}; // [2, 3]
    const float x[3] = {1, 0, -1};
    const float bias[2] = {0.5f, -0.5f};
    float y[2];
    matmul(x, 1, make_weight(w, DType::kF32, 2, 3), bias, y, nullptr);
    EXPECT_FLOAT_EQ(y[0], 1 - 3 + 0.5f);
    EXPECT_FLOAT_EQ(y[1], 4 - 6 - 0.5f);
}

TEST(RefOps, RmsNormUnitRms) {
    const float x[4] = {1, -1, 1, -1}, w[4] = {1, 2, 3, 4};
    float y[4];
    rms_norm(x, w, y, 1, 4, 0.0f);
    EXPECT_FLOAT_EQ(y[0], 1);
    EXPECT_FLOAT_EQ(y[1], -2);
    EXPECT_FLOAT_EQ(y[3], -4);
}

TEST(RefOps, RopePairsPerConvention) {
    // head_dim 4, inv_freq {1, 0}: only pair 0 rotates, by angle = position.
    const float inv_freq[2] = {1.0f, 0.0f};
    std::vector<float> neox = {1, 2, 3, 4}, norm = {1, 2, 3, 4};
    rope(neox.data(), 1, 4, 1, 4, 1, inv_freq, RopeStyle::kNeox); // pair (0, 2)
    rope(norm.data(), 1, 4, 1, 4, 1, inv_freq, RopeStyle::kNorm); // pair (0, 1)
    const float c = std::cos(1.0f), s = std::sin(1.0f);
    EXPECT_NEAR(neox[0], 1 * c - 3 * s, 1e-6);
    EXPECT_NEAR(neox[2], 1 * s + 3 * c, 1e-6);
    EXPECT_FLOAT_EQ(neox[1], 2);
    EXPECT_NEAR(norm[0], 1 * c - 2 * s, 1e-6);
    EXPECT_NEAR(norm[1], 1 * s + 2 * c, 1e-6);
    EXPECT_FLOAT_EQ(norm[2], 3);
}

TEST(RefOps, SoftmaxAndSilu) {
    float x[3] = {0, std::log(2.0f), std::log(5.0f)};
    softmax(x, 3);
    EXPECT_NEAR(x[0], 0.125, 1e-7);
    EXPECT_NEAR(x[2], 0.625, 1e-7);
    const float g[2] = {0, 2}, u[2] = {3, 1};
    float o[2];
    silu_mul(g, u, o, 2);
    EXPECT_FLOAT_EQ(o[0], 0);
    EXPECT_NEAR(o[1], 2 / (1 + std::exp(-2.0)), 1e-6);
}

TEST(RefOps, AttentionCausalAndGqa) {
    // 2 heads share 1 kv head, head_dim 1, 2 tokens from position 0. Token 0 sees only v[0].
    const float q[4] = {1, 2, 1, 2}, k[2] = {1, 1}, v[2] = {10, 20};
    float out[4];
    AttentionArgs a;
    a.q = q, a.k = k, a.v = v, a.out = out;
    a.n_tokens = 2, a.n_past = 0, a.n_heads = 2, a.n_kv_heads = 1, a.head_dim = 1, a.scale = 1;
    attention(a, nullptr);
    EXPECT_FLOAT_EQ(out[0], 10);
    EXPECT_FLOAT_EQ(out[1], 10);
    EXPECT_NEAR(out[2], 15, 1e-5); // equal keys: uniform weights over both rows
    EXPECT_NEAR(out[3], 15, 1e-5);
}

} // namespace
} // namespace lowbit::kernel::ref
