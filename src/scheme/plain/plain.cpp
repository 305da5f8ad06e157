// SPDX-License-Identifier: MIT
// Plain float row conversions.
#include "scheme/plain/plain.h"

#include "core/half.h"

#include <cstring>

namespace lowbit::scheme::plain {

void dequantize_row_f32(const void* src, float* dst, int64_t n) {
    std::memcpy(dst, src, sizeof(float) * size_t(n));
}
void quantize_row_f32(const float* src, void* dst, int64_t n, const float*) {
    std::memcpy(dst, src, sizeof(float) * size_t(n));
}
// src/dst may sit at any address (mmap'd safetensors data): loads and stores go through memcpy (core/half.h).
void dequantize_row_f16(const void* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load_u16(src, i));
}
void quantize_row_f16(const float* src, void* dst, int64_t n, const float*) {
    for (int64_t i = 0; i < n; ++i) store_u16(dst, i, f32_to_f16(src[i]));
}
void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(src, i));
}
void quantize_row_bf16(const float* src, void* dst, int64_t n, const float*) {
    for (int64_t i = 0; i < n; ++i) store_u16(dst, i, f32_to_bf16(src[i]));
}

} // namespace lowbit::scheme::plain
