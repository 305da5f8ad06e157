// SPDX-License-Identifier: MIT
// Hand-built Q5_K block (ANCHORS.md §3.7): as Q4_K plus qh[32], where bit 2p of byte l is the 5th bit of
// weight 64p + l and bit 2p+1 that of weight 64p + 32 + l; x = d*sc*q - dmin*m with q in [0, 32).
#include "core/half.h"
#include "scheme/q5_k/q5_k.h"

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

namespace lowbit::scheme::q5_k {
namespace {

TEST(Q5K, HandBuiltBlockDecodes) {
    std::vector<uint8_t> b(sizeof(Block), 0);
    const int sc[8] = {3, 1, 62, 9, 16, 47, 32, 63};
    const int mn[8] = {5, 0, 12, 63, 33, 2, 48, 17};
    uint8_t* s = b.data() + 4;
    for (int j = 0; j < 8; ++j) { // 6-bit scales and mins, get_scale_min_k4 layout
        if (j < 4) {
            s[j] = static_cast<uint8_t>(s[j] | sc[j]);
            s[j + 4] = static_cast<uint8_t>(s[j + 4] | mn[j]);
        } else {
            s[j + 4] = static_cast<uint8_t>((sc[j] & 15) | ((mn[j] & 15) << 4));
            s[j - 4] = static_cast<uint8_t>(s[j - 4] | ((sc[j] >> 4) << 6));
            s[j] = static_cast<uint8_t>(s[j] | ((mn[j] >> 4) << 6));
        }
    }
    auto q_of = [](int w) { return (w * 9 + w / 32) & 31; };
    uint8_t* qh = b.data() + 16;
    uint8_t* ql = b.data() + 48;
    for (int p = 0; p < 4; ++p) {
        for (int l = 0; l < 32; ++l) {
            const int lo = q_of(64 * p + l), hi = q_of(64 * p + 32 + l);
            ql[32 * p + l] = static_cast<uint8_t>((lo & 15) | ((hi & 15) << 4));
            qh[l] = static_cast<uint8_t>(qh[l] | ((lo >> 4) << (2 * p)) | ((hi >> 4) << (2 * p + 1)));
        }
    }
    const uint16_t d = f32_to_f16(0.25f), dmin = f32_to_f16(0.5f);
    std::memcpy(b.data(), &d, 2);
    std::memcpy(b.data() + 2, &dmin, 2);
    std::vector<float> y(kBlockElems);
    dequantize_row(b.data(), y.data(), kBlockElems);
    for (int w = 0; w < kBlockElems; ++w) {
        const int g = w / 32;
        const float want =
            0.25f * static_cast<float>(sc[g]) * static_cast<float>(q_of(w)) - 0.5f * static_cast<float>(mn[g]);
        ASSERT_EQ(y[w], want) << w;
    }
}

} // namespace
} // namespace lowbit::scheme::q5_k
