// SPDX-License-Identifier: MIT
// Q6_K (ggml type 14): super-blocks of 256 weights in 16 groups of 16, 6.5625 bits per weight.
// Layout (210 bytes): ql[128] | qh[64] | scales[16] int8 | d f16.
//   Per 128 weights (ql 64 bytes, qh 32 bytes): weight l      -> ql[l] low nibble,    qh[l] bits 0-1;
//   l + 32 -> ql[l+32] low nibble, qh[l] bits 2-3;  l + 64 -> ql[l] high nibble, qh[l] bits 4-5;
//   l + 96 -> ql[l+32] high nibble, qh[l] bits 6-7.
// Decode: x = d * scales[g] * (q - 32), q in [0, 64).
#pragma once

#include <cstdint>

namespace lowbit::scheme::q6_k {

inline constexpr int kBlockElems = 256;

struct Block {
    uint8_t ql[128];   // low 4 bits
    uint8_t qh[64];    // high 2 bits
    int8_t scales[16]; // 8-bit group scales
    uint16_t d;        // f16 super-block scale
};
static_assert(sizeof(Block) == 210, "Q6_K block is 210 bytes");

// ggml's quantize_q6_K for one row: quantize_row_q6_K_ref without importance, quantize_row_q6_K_impl with.
void quantize_row(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row(const void* src, float* dst, int64_t n_elems);

} // namespace lowbit::scheme::q6_k
