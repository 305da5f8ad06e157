// SPDX-License-Identifier: MIT
// Hand-built Q4_0 block: byte j holds weight j (low nibble) and weight j+16 (high nibble); x = (q - 8) * d.
#include "core/half.h"
#include "scheme/q4_0/q4_0.h"

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

namespace lowbit::scheme::q4_0 {
namespace {

TEST(Q40, HandBuiltBlockDecodes) {
    std::vector<uint8_t> b(sizeof(Block));
    const uint16_t d = f32_to_f16(-0.25f);
    std::memcpy(b.data(), &d, 2);
    auto q_of = [](int w) { return (w * 5 + 3) & 15; };
    for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(q_of(j) | (q_of(j + 16) << 4));
    std::vector<float> y(32);
    dequantize_row(b.data(), y.data(), 32);
    for (int w = 0; w < 32; ++w) EXPECT_EQ(y[w], -0.25f * static_cast<float>(q_of(w) - 8)) << w;
}

TEST(Q40, SignedMaxMapsToLevelZero) {
    // llama.cpp: d = max / -8 with max the signed value of largest magnitude, so that value decodes exactly.
    std::vector<float> x(32, 0.1f);
    x[9] = -4.0f;
    std::vector<uint8_t> b(sizeof(Block));
    quantize_row(x.data(), b.data(), 32, nullptr);
    std::vector<float> y(32);
    dequantize_row(b.data(), y.data(), 32);
    EXPECT_EQ(y[9], -4.0f);
    EXPECT_EQ(b[2 + 9] & 0xF, 0);
}

} // namespace
} // namespace lowbit::scheme::q4_0
