// SPDX-License-Identifier: MIT
// The cache-blocked CPU solver (HqqOptions::blocked) against the one-pass-per-iteration solver:
// the same packed codes, scale, zero and per-iteration errors, bit for bit, across bits/axes/group sizes,
// heavy tails, weights large enough for the lp shrink, and runs that stop early (the kept zero is the stop's);
// the packed bytes are scheme::hqq::pack's.
#include "quantize/hqq/hqq_solver.h"

#include <cstdio>
#include <cstring>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::quantize::hqq {
namespace {

std::vector<float> weights(int64_t n, float nu, float sigma, uint32_t seed) {
    std::mt19937 rng(seed);
    std::student_t_distribution<float> t(nu);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = sigma * t(rng);
    return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(HqqBlocked, BitIdenticalToOnePassPerIteration) {
    struct Case {
        int64_t rows, cols;
        int nbits;
        int64_t group;
        int axis;
        float nu, sigma;
        int iters;
        double kappa;
    };
    const Case cases[] = {
        {128, 256, 4, 64, 1, 3.0f, 0.02f, 20, 1.01},  {64, 384, 3, 128, 1, 2.5f, 0.02f, 20, 1.01},
        {32, 1000, 2, 50, 1, 3.0f, 0.02f, 20, 1.01},  {256, 128, 4, 64, 0, 3.0f, 0.02f, 20, 1.01},
        {128, 128, 1, 32, 1, 2.0f, 1.0f, 20, 1.01},   {128, 128, 2, 16, 0, 2.0f, 0.5f, 20, 1.0},
        {96, 256, 8, 128, 1, 3.0f, 0.02f, 20, 1.01},  {64, 640, 3, 64, 0, 3.0f, 0.3f, 20, 1.01},
        {16, 4096, 2, 4096, 1, 3.0f, 2.0f, 20, 1.01}, {64, 256, 4, 64, 1, 3.0f, 0.02f, 40, 1.05},
        {64, 256, 2, 64, 0, 3.0f, 0.02f, 40, 1.05},
    };
    uint32_t seed = 40;
    int stopped_early = 0;
    for (const Case& c : cases) {
        const auto w = weights(c.rows * c.cols, c.nu, c.sigma, seed++);
        scheme::hqq::HqqParams p;
        p.nbits = c.nbits;
        p.group_size = c.group;
        p.axis = c.axis;
        p.meta_dtype = DType::kF32;
        HqqOptions o;
        o.iters = c.iters;
        o.kappa = c.kappa;
        o.blocked = true;
        auto blocked = quantize_hqq(w.data(), Shape{c.rows, c.cols}, p, o);
        o.blocked = false;
        auto plain = quantize_hqq(w.data(), Shape{c.rows, c.cols}, p, o);
        ASSERT_TRUE(blocked.ok() && plain.ok());
        const std::string what = std::to_string(c.nbits) + "-bit g" + std::to_string(c.group) + " axis " +
                                 std::to_string(c.axis) + " iters " + std::to_string(c.iters);
        EXPECT_EQ(blocked->errors, plain->errors) << what;
        EXPECT_TRUE(blocked->tensor.w_q == plain->tensor.w_q) << what;
        EXPECT_TRUE(same_bits(blocked->tensor.scale, plain->tensor.scale)) << what;
        EXPECT_TRUE(same_bits(blocked->tensor.zero, plain->tensor.zero)) << what;
        // The solver's parallel packing is scheme::hqq::pack: repacking the unpacked codes gives the same bytes.
        const auto gs = scheme::hqq::grouped_shape(p, Shape{c.rows, c.cols});
        const auto codes = scheme::hqq::unpack(blocked->tensor.w_q, c.nbits, gs.n_rows, gs.n_cols);
        EXPECT_TRUE(scheme::hqq::pack(codes, c.nbits, gs.n_rows, gs.n_cols) == blocked->tensor.w_q) << what;
        stopped_early += int(plain->errors.size()) < c.iters;
        std::printf("  %-28s %zu iterations\n", what.c_str(), plain->errors.size());
    }
    EXPECT_GE(stopped_early, 2); // the kept-zero-at-the-stop path is exercised
}

} // namespace
} // namespace lowbit::quantize::hqq
