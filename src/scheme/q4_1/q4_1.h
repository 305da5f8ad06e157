// SPDX-License-Identifier: MIT
// Q4_1 (ggml type 3): blocks of 32 weights, 5.0 bits per weight.
// Layout (20 bytes): d f16 | m f16 | qs[16]. Byte j: low nibble = weight j, high nibble = weight j+16.
// Decode: x = q * d + m.
#pragma once

#include <cstdint>

namespace lowbit::scheme::q4_1 {

inline constexpr int kBlockElems = 32;

struct Block {
    uint16_t d;     // f16 scale
    uint16_t m;     // f16 min (offset)
    uint8_t qs[16]; // nibbles
};
static_assert(sizeof(Block) == 20, "Q4_1 block is 20 bytes");

// ggml's quantize_q4_1 for one row (ref min/max without importance, make_qkx3_quants with it).
void quantize_row(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row(const void* src, float* dst, int64_t n_elems);

} // namespace lowbit::scheme::q4_1
