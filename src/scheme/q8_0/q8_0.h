// SPDX-License-Identifier: MIT
// Q8_0 (ggml type 8): blocks of 32 weights, 8.5 bits per weight.
// Layout (34 bytes): d f16 | qs[32] int8.  Decode: x[j] = qs[j] * d, d = amax / 127.
#pragma once

#include <cstdint>

namespace lowbit::scheme::q8_0 {

inline constexpr int kBlockElems = 32;

struct Block {
    uint16_t d;    // f16 scale
    int8_t qs[32]; // quants
};
static_assert(sizeof(Block) == 34, "Q8_0 block is 34 bytes");

// ggml's quantize_q8_0 (= quantize_row_q8_0_ref; importance is ignored, as in ggml). n_elems % 32 == 0.
void quantize_row(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row(const void* src, float* dst, int64_t n_elems);

} // namespace lowbit::scheme::q8_0
