// SPDX-License-Identifier: MIT
// Q4_0 (ggml type 2): blocks of 32 weights, 4.5 bits per weight.
// Layout (18 bytes): d f16 | qs[16]. Byte j: low nibble = weight j, high nibble = weight j+16.
// Decode: x = (q - 8) * d; without importance d = (signed max) / -8.
#pragma once

#include <cstdint>

namespace lowbit::scheme::q4_0 {

inline constexpr int kBlockElems = 32;

struct Block {
    uint16_t d;     // f16 scale
    uint8_t qs[16]; // nibbles
};
static_assert(sizeof(Block) == 18, "Q4_0 block is 18 bytes");

// ggml's quantize_q4_0 for one row: quantize_row_q4_0_ref without importance, the weighted
// make_qx_quants search with it. n_elems % 32 == 0; importance is [n_elems] or null.
void quantize_row(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row(const void* src, float* dst, int64_t n_elems);

} // namespace lowbit::scheme::q4_0
