// SPDX-License-Identifier: MIT
// ggml helper invariants: nearest_int rounds half to even like the FPU, the 6-bit scale/min packing round-trips,
// and the scale searches return exact scales on values that sit on a grid.
#include "scheme/ggml_common/ggml_common.h"

#include <cmath>
#include <gtest/gtest.h>

namespace lowbit::scheme::ggml {
namespace {

TEST(GgmlCommon, NearestIntIsRoundHalfEven) {
    for (const float v : {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 0.49999997f, 3.7f, -3.7f, 4194303.f, -4194303.f}) {
        EXPECT_EQ(nearest_int(v), static_cast<int>(std::nearbyint(v))) << v;
    }
}

TEST(GgmlCommon, ScaleMinK4RoundTrips) {
    uint8_t packed[12] = {};
    const uint8_t sc[8] = {0, 63, 17, 32, 48, 1, 62, 15};
    const uint8_t mn[8] = {63, 0, 31, 16, 5, 60, 33, 47};
    for (int j = 0; j < 8; ++j) set_scale_min_k4(j, sc[j], mn[j], packed);
    for (int j = 0; j < 8; ++j) {
        uint8_t s, m;
        get_scale_min_k4(j, packed, &s, &m);
        EXPECT_EQ(s, sc[j]) << j;
        EXPECT_EQ(m, mn[j]) << j;
    }
}

TEST(GgmlCommon, QxQuantsRecoversGridScale) {
    float x[16];
    for (int i = 0; i < 16; ++i) x[i] = 0.25f * static_cast<float>(i - 8); // levels -8..7 of scale 0.25
    int8_t L[16];
    const float scale = make_qx_quants(16, 8, x, L, 1, nullptr);
    EXPECT_FLOAT_EQ(std::fabs(scale), 0.25f);
    for (int i = 0; i < 16; ++i) EXPECT_FLOAT_EQ(scale * static_cast<float>(L[i] - 8), x[i]) << i;
}

TEST(GgmlCommon, Qkx2QuantsRecoversScaleAndMin) {
    float x[32], w[32];
    for (int i = 0; i < 32; ++i) {
        x[i] = 0.1f * static_cast<float>(i % 16) - 0.3f; // scale 0.1, min -0.3
        w[i] = 1.0f;
    }
    uint8_t L[32], Laux[32];
    float the_min = 0;
    const float scale = make_qkx2_quants(32, 15, x, w, L, &the_min, Laux, -1.f, 0.1f, 20, false);
    EXPECT_NEAR(scale, 0.1f, 1e-6f);
    EXPECT_NEAR(the_min, 0.3f, 1e-6f);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(L[i], i % 16) << i;
}

TEST(GgmlCommon, AllZeroGroupsGiveZeroScale) {
    const float x[16] = {};
    int8_t L[16];
    EXPECT_EQ(make_qx_quants(16, 32, x, L, 1, nullptr), 0.f);
    EXPECT_EQ(make_q3_quants(16, 4, x, L, true), 0.f);
    uint8_t U[16];
    const float w[16] = {};
    EXPECT_EQ(make_qp_quants(16, 15, x, U, w), 0.f);
}

} // namespace
} // namespace lowbit::scheme::ggml
