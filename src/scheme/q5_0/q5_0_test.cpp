// SPDX-License-Identifier: MIT
// Hand-built Q5_0 block: qh is a little-endian u32 whose bit j is the 5th bit of weight j; x = (q - 16) * d.
#include "core/half.h"
#include "scheme/q5_0/q5_0.h"

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

namespace lowbit::scheme::q5_0 {
namespace {

TEST(Q50, HandBuiltBlockDecodes) {
    std::vector<uint8_t> b(sizeof(Block));
    const uint16_t d = f32_to_f16(0.5f);
    std::memcpy(b.data(), &d, 2);
    auto q_of = [](int w) { return (w * 7 + 2) & 31; };
    uint32_t qh = 0;
    for (int w = 0; w < 32; ++w) qh |= static_cast<uint32_t>(q_of(w) >> 4) << w;
    std::memcpy(b.data() + 2, &qh, 4);
    for (int j = 0; j < 16; ++j) b[6 + j] = static_cast<uint8_t>((q_of(j) & 15) | ((q_of(j + 16) & 15) << 4));
    std::vector<float> y(32);
    dequantize_row(b.data(), y.data(), 32);
    for (int w = 0; w < 32; ++w) EXPECT_EQ(y[w], 0.5f * static_cast<float>(q_of(w) - 16)) << w;
}

} // namespace
} // namespace lowbit::scheme::q5_0
