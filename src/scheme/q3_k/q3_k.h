// SPDX-License-Identifier: MIT
// Q3_K (ggml type 11): super-blocks of 256 weights in 16 groups of 16, 3.4375 bits per weight.
// Layout (110 bytes): hmask[32] | qs[64] | scales[12] | d f16.
//   hmask: bit k of byte m is the high bit of weight 32*k + m (set means level >= 4, i.e. q >= 0).
//   qs: low 2 bits, per 128 weights 32 bytes; byte l holds weights l, l+32, l+64, l+96 at shifts 0, 2, 4, 6.
//   scales: 16 signed 6-bit scales (+32 offset): low nibbles in bytes 0..7 (group j and j+8),
//   high 2 bits in bytes 8..11 (group j at byte 8 + j%4, shift 2*(j/4)).
// Decode: x = d * (sc - 32) * (q - 4), q in [0, 8).
#pragma once

#include <cstdint>

namespace lowbit::scheme::q3_k {

inline constexpr int kBlockElems = 256;

struct Block {
    uint8_t hmask[32];  // high bits
    uint8_t qs[64];     // low 2 bits
    uint8_t scales[12]; // 6-bit group scales
    uint16_t d;         // f16 super-block scale
};
static_assert(sizeof(Block) == 110, "Q3_K block is 110 bytes");

// ggml's quantize_q3_K for one row: quantize_row_q3_K_ref without importance, quantize_row_q3_K_impl with.
void quantize_row(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row(const void* src, float* dst, int64_t n_elems);

} // namespace lowbit::scheme::q3_k
