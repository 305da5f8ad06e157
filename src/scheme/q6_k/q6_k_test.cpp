// SPDX-License-Identifier: MIT
// Hand-built Q6_K blocks (DESIGN.md §3.7): bytes laid out from the published layout (ANCHORS.md §3.7) by this
// test's own encoder; decoded values from the formula x = d * scale[w/16] * (q - 32).
#include "core/half.h"
#include "scheme/q6_k/q6_k.h"

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

namespace lowbit::scheme::q6_k {
namespace {

TEST(Q6K, HandBuiltBlockDecodes) {
    const float d = 0.25f;
    int8_t sc[16];
    for (int g = 0; g < 16; ++g) sc[g] = static_cast<int8_t>(g % 2 ? -(g * 8) : g * 8 + 1);
    sc[15] = -128; // extremes of the int8 scale
    sc[14] = 127;
    auto q_of = [](int w) { return (w * 13 + 5) & 63; };
    std::vector<uint8_t> b(sizeof(Block), 0);
    uint8_t* ql = b.data();
    uint8_t* qh = b.data() + 128;
    for (int h = 0; h < 2; ++h) { // each 128 weights: ql 64 bytes, qh 32 bytes
        for (int l = 0; l < 32; ++l) {
            const int base = 128 * h + l;
            const int q0 = q_of(base), q1 = q_of(base + 32), q2 = q_of(base + 64), q3 = q_of(base + 96);
            ql[64 * h + l] = static_cast<uint8_t>((q0 & 15) | ((q2 & 15) << 4));
            ql[64 * h + l + 32] = static_cast<uint8_t>((q1 & 15) | ((q3 & 15) << 4));
            qh[32 * h + l] = static_cast<uint8_t>((q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6));
        }
    }
    std::memcpy(b.data() + 192, sc, 16);
    const uint16_t dh = f32_to_f16(d);
    std::memcpy(b.data() + 208, &dh, 2);
    std::vector<float> got(kBlockElems);
    dequantize_row(b.data(), got.data(), kBlockElems);
    for (int w = 0; w < kBlockElems; ++w) {
        const float want = d * static_cast<float>(sc[w / 16]) * static_cast<float>(q_of(w) - 32);
        ASSERT_EQ(got[w], want) << "weight " << w;
    }
    // By hand: weight 0 has q = 5, scale 1 -> 0.25 * 1 * (5 - 32) = -6.75; weight 255 has q = (3315 + 5) & 63 = 56,
    // scale -128 -> 0.25 * -128 * 24 = -768.
    EXPECT_EQ(got[0], -6.75f);
    EXPECT_EQ(got[255], -768.0f);
}

TEST(Q6K, AllZeroSuperBlockIsAllZeroBytes) {
    std::vector<float> x(kBlockElems, 0.f);
    std::vector<uint8_t> bytes(sizeof(Block), 0xFF);
    quantize_row(x.data(), bytes.data(), kBlockElems, nullptr);
    for (size_t i = 0; i < bytes.size(); ++i) EXPECT_EQ(bytes[i], 0) << i; // ggml memsets the block
}

} // namespace
} // namespace lowbit::scheme::q6_k
