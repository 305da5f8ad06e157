// SPDX-License-Identifier: MIT
// Q5_1 (ggml type 7): blocks of 32 weights, 6.0 bits per weight.
// Layout (24 bytes): d f16 | m f16 | qh[4] (bit j of the little-endian u32 = 5th bit of weight j) | qs[16].
// Decode: x = q * d + m.
#pragma once

#include <cstdint>

namespace lowbit::scheme::q5_1 {

inline constexpr int kBlockElems = 32;

struct Block {
    uint16_t d;     // f16 scale
    uint16_t m;     // f16 min
    uint8_t qh[4];  // 5th bits
    uint8_t qs[16]; // low nibbles
};
static_assert(sizeof(Block) == 24, "Q5_1 block is 24 bytes");

// ggml's quantize_q5_1 for one row (ref without importance, make_qkx3_quants with it).
void quantize_row(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row(const void* src, float* dst, int64_t n_elems);

} // namespace lowbit::scheme::q5_1
