// SPDX-License-Identifier: MIT
// Q2_K (ggml type 10): super-blocks of 256 weights in 16 groups of 16, 2.625 bits per weight.
// Layout (84 bytes): scales[16] (low nibble: 4-bit scale, high nibble: 4-bit min) | qs[64] | d f16 | dmin f16.
// qs: per 128 weights, 32 bytes; byte l holds weights l, l+32, l+64, l+96 at bit shifts 0, 2, 4, 6.
// Decode: x = d * (sc & 15) * q - dmin * (sc >> 4).
#pragma once

#include <cstdint>

namespace lowbit::scheme::q2_k {

inline constexpr int kBlockElems = 256;

struct Block {
    uint8_t scales[16]; // 4-bit scale | 4-bit min << 4, per group of 16
    uint8_t qs[64];     // 2-bit quants
    uint16_t d;         // f16 super-block scale of the scales
    uint16_t dmin;      // f16 super-block scale of the mins
};
static_assert(sizeof(Block) == 84, "Q2_K block is 84 bytes");

// ggml's quantize_q2_K for one row: quantize_row_q2_K_ref without importance, quantize_row_q2_K_impl with.
void quantize_row(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row(const void* src, float* dst, int64_t n_elems);

} // namespace lowbit::scheme::q2_k
