// SPDX-License-Identifier: MIT
// Hand-built Q4_1 block: d, m f16, then nibbles as Q4_0; x = q * d + m.
#include "core/half.h"
#include "scheme/q4_1/q4_1.h"

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

namespace lowbit::scheme::q4_1 {
namespace {

TEST(Q41, HandBuiltBlockDecodes) {
    std::vector<uint8_t> b(sizeof(Block));
    const uint16_t d = f32_to_f16(0.125f), m = f32_to_f16(-1.0f);
    std::memcpy(b.data(), &d, 2);
    std::memcpy(b.data() + 2, &m, 2);
    auto q_of = [](int w) { return (w * 11 + 1) & 15; };
    for (int j = 0; j < 16; ++j) b[4 + j] = static_cast<uint8_t>(q_of(j) | (q_of(j + 16) << 4));
    std::vector<float> y(32);
    dequantize_row(b.data(), y.data(), 32);
    for (int w = 0; w < 32; ++w) EXPECT_EQ(y[w], 0.125f * static_cast<float>(q_of(w)) - 1.0f) << w;
}

TEST(Q41, MinAndMaxAreEndpoints) {
    std::vector<float> x(32);
    for (int w = 0; w < 32; ++w) x[w] = -1.0f + 0.125f * static_cast<float>(w % 16); // exact grid of 16 levels
    std::vector<uint8_t> b(sizeof(Block));
    quantize_row(x.data(), b.data(), 32, nullptr);
    std::vector<float> y(32);
    dequantize_row(b.data(), y.data(), 32);
    for (int w = 0; w < 32; ++w) EXPECT_EQ(y[w], x[w]) << w;
}

} // namespace
} // namespace lowbit::scheme::q4_1
