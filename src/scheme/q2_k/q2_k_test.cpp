// SPDX-License-Identifier: MIT
// Hand-built Q2_K block (ANCHORS.md §3.7): scales[16] (low nibble scale, high nibble min), qs[64] (per 128
// weights, byte l holds weights l, l+32, l+64, l+96 at shifts 0/2/4/6), d, dmin f16; x = d*sc*q - dmin*m.
#include "core/half.h"
#include "scheme/q2_k/q2_k.h"

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

namespace lowbit::scheme::q2_k {
namespace {

TEST(Q2K, HandBuiltBlockDecodes) {
    std::vector<uint8_t> b(sizeof(Block), 0);
    int sc[16], mn[16];
    for (int g = 0; g < 16; ++g) {
        sc[g] = (g * 3 + 1) & 15;
        mn[g] = (g * 5 + 2) & 15;
        b[g] = static_cast<uint8_t>(sc[g] | (mn[g] << 4));
    }
    auto q_of = [](int w) { return (w * 3 + w / 16) & 3; };
    for (int h = 0; h < 2; ++h) {
        for (int l = 0; l < 32; ++l) {
            const int base = 128 * h + l;
            b[16 + 32 * h + l] = static_cast<uint8_t>(q_of(base) | (q_of(base + 32) << 2) | (q_of(base + 64) << 4) |
                                                      (q_of(base + 96) << 6));
        }
    }
    const uint16_t d = f32_to_f16(0.5f), dmin = f32_to_f16(0.125f);
    std::memcpy(b.data() + 80, &d, 2);
    std::memcpy(b.data() + 82, &dmin, 2);
    std::vector<float> y(kBlockElems);
    dequantize_row(b.data(), y.data(), kBlockElems);
    for (int w = 0; w < kBlockElems; ++w) {
        const int g = w / 16;
        const float want =
            0.5f * static_cast<float>(sc[g]) * static_cast<float>(q_of(w)) - 0.125f * static_cast<float>(mn[g]);
        ASSERT_EQ(y[w], want) << w;
    }
}

} // namespace
} // namespace lowbit::scheme::q2_k
