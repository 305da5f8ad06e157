// SPDX-License-Identifier: MIT
// Plain rows at odd addresses (issue #15): mmap'd safetensors data sits at 8 + header length + offset, so a valid
// file with an odd header length puts every tensor at an odd address. The rows must read and write through
// memcpy: under the asan preset (UBSan, -fno-sanitize-recover) a plain uint16_t/float load here aborts.
#include "core/half.h"
#include "scheme/plain/plain.h"

#include <cmath>
#include <cstdint>
#include <gtest/gtest.h>
#include <vector>

namespace lowbit::scheme::plain {
namespace {

TEST(PlainRows, OddAddressesRoundTrip) {
    constexpr int64_t n = 37;
    std::vector<float> src(n), back(n);
    for (int64_t i = 0; i < n; ++i) src[size_t(i)] = std::sin(0.37f * float(i)) * 3.0f;
    alignas(16) uint8_t buf[1 + 4 * n + 8];
    for (int offset : {1, 3}) {
        uint8_t* p = buf + offset;
        quantize_row_bf16(src.data(), p, n, nullptr);
        dequantize_row_bf16(p, back.data(), n);
        for (int64_t i = 0; i < n; ++i) EXPECT_EQ(back[size_t(i)], bf16_to_f32(f32_to_bf16(src[size_t(i)]))) << i;
        quantize_row_f16(src.data(), p, n, nullptr);
        dequantize_row_f16(p, back.data(), n);
        for (int64_t i = 0; i < n; ++i) EXPECT_EQ(back[size_t(i)], f16_to_f32(f32_to_f16(src[size_t(i)]))) << i;
        EXPECT_EQ(load_u16(p, 2), f32_to_f16(src[2]));
        quantize_row_f32(src.data(), p, n, nullptr);
        dequantize_row_f32(p, back.data(), n);
        EXPECT_EQ(back, src);
        EXPECT_EQ(load_f32(p, 5), src[5]);
    }
}

} // namespace
} // namespace lowbit::scheme::plain
