// SPDX-License-Identifier: MIT
// lp_pow (the shrink's power, shared by the CPU and CUDA solvers) against libm's double pow rounded to f32:
// equal except at most a few in a million, never more than 1 ulp apart; exact powers of two.
#include "quantize/hqq/hqq_pow.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::quantize::hqq {
namespace {

int64_t ulps(float a, float b) {
    int32_t ia, ib;
    std::memcpy(&ia, &a, 4);
    std::memcpy(&ib, &b, 4);
    return std::llabs(int64_t(ia) - int64_t(ib)); // both positive here
}

TEST(HqqPow, MatchesCorrectlyRoundedPower) {
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> lg(-20.0f, 20.0f);
    int64_t n = 0, diff = 0, worst = 0;
    for (float e : {-0.3f, 0.7f - 1.0f, -0.5f, -0.1f, -0.9f, -0.999f}) {
        for (int i = 0; i < 100000; ++i) {
            const float a = std::exp2(lg(rng));
            const float got = lp_pow(a, e), want = float(std::pow(double(a), double(e)));
            const int64_t u = ulps(got, want);
            diff += u != 0;
            worst = std::max(worst, u);
            ++n;
        }
    }
    std::printf("  lp_pow vs libm pow: %lld of %lld differ (worst %lld ulp)\n", (long long)diff, (long long)n,
                (long long)worst);
    EXPECT_LE(worst, 1);
    EXPECT_LE(diff, n / 100000) << diff << " of " << n << " differ from libm by 1 ulp";
}

TEST(HqqPow, ExactCases) {
    EXPECT_EQ(lp_pow(1.0f, -0.3f), 1.0f);
    EXPECT_EQ(lp_pow(4.0f, -0.5f), 0.5f);
    EXPECT_EQ(lp_pow(0.25f, -0.5f), 2.0f);
    EXPECT_EQ(lp_pow(3.7f, 0.0f), 1.0f);
    const float sub = 1e-40f; // an f32 subnormal
    EXPECT_EQ(lp_pow(sub, -0.5f), float(std::pow(double(sub), -0.5)));
}

} // namespace
} // namespace lowbit::quantize::hqq
