// SPDX-License-Identifier: MIT
// Q4_K (ggml type 12): super-blocks of 256 weights in 8 groups of 32, 4.5 bits per weight.
// Layout (144 bytes): d f16 | dmin f16 | scales[12] (8 6-bit scales + 8 6-bit mins, get_scale_min_k4) | qs[128].
//   qs: per 64 weights, 32 bytes: low nibble = weight l of the first group, high nibble = weight l of the second.
// Decode: x = d * sc[g] * q - dmin * m[g], q in [0, 16).
#pragma once

#include <cstdint>

namespace lowbit::scheme::q4_k {

inline constexpr int kBlockElems = 256;

struct Block {
    uint16_t d;         // f16 super-block scale of the scales
    uint16_t dmin;      // f16 super-block scale of the mins
    uint8_t scales[12]; // 6-bit scales and mins
    uint8_t qs[128];    // 4-bit quants
};
static_assert(sizeof(Block) == 144, "Q4_K block is 144 bytes");

// ggml's quantize_q4_K for one row: quantize_row_q4_K_ref without importance, quantize_row_q4_K_impl with.
void quantize_row(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row(const void* src, float* dst, int64_t n_elems);

} // namespace lowbit::scheme::q4_k
