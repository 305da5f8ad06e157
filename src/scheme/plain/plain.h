// SPDX-License-Identifier: MIT
// Plain float rows: f32 (copy), f16 and bf16 (exact round-to-nearest-even, core/half.h).
#pragma once

#include <cstdint>

namespace lowbit::scheme::plain {

void dequantize_row_f32(const void* src, float* dst, int64_t n_elems);
void quantize_row_f32(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row_f16(const void* src, float* dst, int64_t n_elems);
void quantize_row_f16(const float* src, void* dst, int64_t n_elems, const float* importance);
void dequantize_row_bf16(const void* src, float* dst, int64_t n_elems);
void quantize_row_bf16(const float* src, void* dst, int64_t n_elems, const float* importance);

} // namespace lowbit::scheme::plain
