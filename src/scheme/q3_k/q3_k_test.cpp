// SPDX-License-Identifier: MIT
// Hand-built Q3_K block (ANCHORS.md §3.7): hmask bit k of byte m = high bit of weight 32k + m (set: q >= 4),
// qs as Q2_K, 16 6-bit scales (low nibbles in bytes 0..7 for groups j and j+8, top 2 bits in bytes 8..11),
// d f16; x = d * (sc - 32) * (q - 4).
#include "core/half.h"
#include "scheme/q3_k/q3_k.h"

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

namespace lowbit::scheme::q3_k {
namespace {

TEST(Q3K, HandBuiltBlockDecodes) {
    std::vector<uint8_t> b(sizeof(Block), 0);
    auto q_of = [](int w) { return (w * 5 + w / 16) & 7; }; // 3-bit level 0..7
    for (int w = 0; w < kBlockElems; ++w) {
        if (q_of(w) >= 4) b[w % 32] = static_cast<uint8_t>(b[w % 32] | (1 << (w / 32)));
    }
    for (int h = 0; h < 2; ++h) {
        for (int l = 0; l < 32; ++l) {
            const int base = 128 * h + l;
            b[32 + 32 * h + l] = static_cast<uint8_t>((q_of(base) & 3) | ((q_of(base + 32) & 3) << 2) |
                                                      ((q_of(base + 64) & 3) << 4) | ((q_of(base + 96) & 3) << 6));
        }
    }
    int sc[16];
    uint8_t* scales = b.data() + 96;
    for (int j = 0; j < 16; ++j) {
        sc[j] = (j * 23 + 7) & 63; // stored 6-bit value, decoded as sc - 32
        if (j < 8) {
            scales[j] = static_cast<uint8_t>(scales[j] | (sc[j] & 15));
        } else {
            scales[j - 8] = static_cast<uint8_t>(scales[j - 8] | ((sc[j] & 15) << 4));
        }
        scales[8 + j % 4] = static_cast<uint8_t>(scales[8 + j % 4] | ((sc[j] >> 4) << (2 * (j / 4))));
    }
    const uint16_t d = f32_to_f16(0.25f);
    std::memcpy(b.data() + 108, &d, 2);
    std::vector<float> y(kBlockElems);
    dequantize_row(b.data(), y.data(), kBlockElems);
    for (int w = 0; w < kBlockElems; ++w) {
        const float want = 0.25f * static_cast<float>(sc[w / 16] - 32) * static_cast<float>(q_of(w) - 4);
        ASSERT_EQ(y[w], want) << w;
    }
}

} // namespace
} // namespace lowbit::scheme::q3_k
