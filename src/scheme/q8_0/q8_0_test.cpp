// SPDX-License-Identifier: MIT
// Hand-built Q8_0 block (layout: d f16, 32 int8) and llama.cpp's scale rule d = amax / 127.
#include "core/half.h"
#include "scheme/q8_0/q8_0.h"

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

namespace lowbit::scheme::q8_0 {
namespace {

TEST(Q80, HandBuiltBlockDecodes) {
    std::vector<uint8_t> b(sizeof(Block));
    const uint16_t d = f32_to_f16(0.5f);
    std::memcpy(b.data(), &d, 2);
    for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j * 8 - 128));
    std::vector<float> y(32);
    dequantize_row(b.data(), y.data(), 32);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * static_cast<float>(j * 8 - 128)) << j;
}

TEST(Q80, ScaleIsAmaxOver127) {
    std::vector<float> x(32, 0.f);
    x[5] = -12.7f; // amax
    x[6] = 3.0f;   // 3.0 / 0.1 = 30
    std::vector<uint8_t> b(sizeof(Block));
    quantize_row(x.data(), b.data(), 32, nullptr);
    Block blk;
    std::memcpy(&blk, b.data(), sizeof(blk));
    EXPECT_EQ(blk.d, f32_to_f16(12.7f / 127));
    EXPECT_EQ(blk.qs[5], -127);
    EXPECT_EQ(blk.qs[6], 30);
    EXPECT_EQ(blk.qs[0], 0);
}

} // namespace
} // namespace lowbit::scheme::q8_0
