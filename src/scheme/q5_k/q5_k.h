// SPDX-License-Identifier: MIT
// Q5_K (ggml type 13): super-blocks of 256 weights in 8 groups of 32, 5.5 bits per weight.
// Layout (176 bytes): d f16 | dmin f16 | scales[12] (as Q4_K) | qh[32] | qs[128].
//   qs: as Q4_K (low 4 bits). qh: bit 2k of byte l = 5th bit of weight 64k + l, bit 2k+1 = of weight 64k + 32 + l.
// Decode: x = d * sc[g] * q - dmin * m[g], q in [0, 32).
#pragma once

#include <cstdint>

namespace lowbit::scheme::q5_k {

inline constexpr int kBlockElems = 256;

struct Block {
    uint16_t d;         // f16 super-block scale of the scales
    uint16_t dmin;      // f16 super-block scale of the mins
    uint8_t scales[12]; // 6-bit scales and mins
    uint8_t qh[32];     // 5th bits
    uint8_t qs[128];    // low 4 bits
};
static_assert(sizeof(Block) == 176, "Q5_K block is 176 bytes");

// ggml's quantize_q5_K for one row: quantize_row_q5_K_ref without importance, quantize_row_q5_K_impl with.
void quantize_row(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row(const void* src, float* dst, int64_t n_elems);

} // namespace lowbit::scheme::q5_k
