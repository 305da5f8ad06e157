// SPDX-License-Identifier: MIT
// Q5_0 (ggml type 6): blocks of 32 weights, 5.5 bits per weight.
// Layout (22 bytes): d f16 | qh[4] (bit j of the little-endian u32 = 5th bit of weight j) | qs[16]
// (byte j: low nibble = weight j, high nibble = weight j+16). Decode: x = (q - 16) * d.
#pragma once

#include <cstdint>

namespace lowbit::scheme::q5_0 {

inline constexpr int kBlockElems = 32;

struct Block {
    uint16_t d;     // f16 scale
    uint8_t qh[4];  // 5th bits
    uint8_t qs[16]; // low nibbles
};
static_assert(sizeof(Block) == 22, "Q5_0 block is 22 bytes");

// ggml's quantize_q5_0 for one row (ref without importance, make_qx_quants with it).
void quantize_row(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row(const void* src, float* dst, int64_t n_elems);

} // namespace lowbit::scheme::q5_0
