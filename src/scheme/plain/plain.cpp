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
void dequantize_row_f16(const void* src, float* dst, int64_t n) {
    const auto* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
}
void quantize_row_f16(const float* src, void* dst, int64_t n, const float*) {
    auto* d = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
}
void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
    const auto* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
}
void quantize_row_bf16(const float* src, void* dst, int64_t n, const float*) {
    auto* d = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
}

} // namespace lowbit::scheme::plain
