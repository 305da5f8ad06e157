// SPDX-License-Identifier: MIT
// Hand-built Q4_K blocks (DESIGN.md §3.7): bytes laid out from the published block layout (ANCHORS.md §3.7)
// by this test's own encoder, decoded values computed from the formula x = d*sc*q - dmin*m.
#include "core/half.h"
#include "scheme/q4_k/q4_k.h"

#include <array>
#include <cstring>
#include <gtest/gtest.h>
#include <vector>

namespace lowbit::scheme::q4_k {
namespace {

// 6-bit scale/min of sub-block j, packed as llama.cpp's get_scale_min_k4 reads them.
void put_scale_min(std::array<uint8_t, 12>& s, int j, int sc, int m) {
    if (j < 4) {
        s[j] = static_cast<uint8_t>((s[j] & 0xC0) | sc);
        s[j + 4] = static_cast<uint8_t>((s[j + 4] & 0xC0) | m);
    } else {
        s[j + 4] = static_cast<uint8_t>((sc & 0xF) | ((m & 0xF) << 4));
        s[j - 4] = static_cast<uint8_t>(s[j - 4] | ((sc >> 4) << 6));
        s[j] = static_cast<uint8_t>(s[j] | ((m >> 4) << 6));
    }
}

TEST(Q4K, HandBuiltBlockDecodes) {
    const int sc[8] = {1, 2, 3, 63, 17, 33, 48, 5}; // high bits used by j >= 4
    const int mn[8] = {0, 7, 20, 40, 63, 16, 31, 1};
    const float d = 0.5f, dmin = 0.25f;
    std::array<uint8_t, 12> scales{};
    for (int j = 0; j < 4; ++j) put_scale_min(scales, j, sc[j], mn[j]);
    for (int j = 4; j < 8; ++j) put_scale_min(scales, j, sc[j], mn[j]);
    auto q_of = [](int w) { return (w * 7 + w / 32) & 15; }; // level of weight w
    std::vector<uint8_t> bytes(sizeof(Block));
    const uint16_t dh = f32_to_f16(d), mh = f32_to_f16(dmin);
    std::memcpy(&bytes[0], &dh, 2);
    std::memcpy(&bytes[2], &mh, 2);
    std::memcpy(&bytes[4], scales.data(), 12);
    for (int p = 0; p < 4; ++p) {      // each 64 weights: 32 bytes
        for (int l = 0; l < 32; ++l) { // low nibble: weight 64p + l, high nibble: weight 64p + 32 + l
            bytes[16 + 32 * p + l] = static_cast<uint8_t>(q_of(64 * p + l) | (q_of(64 * p + 32 + l) << 4));
        }
    }
    std::vector<float> got(kBlockElems);
    dequantize_row(bytes.data(), got.data(), kBlockElems);
    for (int w = 0; w < kBlockElems; ++w) {
        const int g = w / 32;
        const float want =
            d * static_cast<float>(sc[g]) * static_cast<float>(q_of(w)) - dmin * static_cast<float>(mn[g]);
        ASSERT_EQ(got[w], want) << "weight " << w;
    }
    // Spot values worked out by hand: weight 0 (group 0: sc 1, m 0, q 0) = 0; weight 254 (group 7: sc 5, m 1,
    // q = (254*7 + 7) & 15 = 9) = 0.5*5*9 - 0.25*1 = 22.25; weight 96 (group 3: sc 63, m 40, q = (672 + 3) & 15 = 3)
    // = 94.5 - 10 = 84.5.
    EXPECT_EQ(got[0], 0.0f);
    EXPECT_EQ(got[254], 22.25f);
    EXPECT_EQ(got[96], 84.5f);
}

TEST(Q4K, QuantizeReproducesRepresentableBlock) {
    // Values on the grid of one sub-block scale and min are recovered exactly.
    std::vector<float> x(kBlockElems);
    for (int w = 0; w < kBlockElems; ++w) x[w] = 0.125f * static_cast<float>(w % 16) - 0.5f;
    std::vector<uint8_t> bytes(sizeof(Block));
    quantize_row(x.data(), bytes.data(), kBlockElems, nullptr);
    std::vector<float> y(kBlockElems);
    dequantize_row(bytes.data(), y.data(), kBlockElems);
    for (int w = 0; w < kBlockElems; ++w) EXPECT_NEAR(y[w], x[w], 1e-3f) << w;
}

} // namespace
} // namespace lowbit::scheme::q4_k
