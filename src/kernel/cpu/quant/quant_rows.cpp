// SPDX-License-Identifier: MIT
// Level dispatch of the quantization fast paths (quant_rows.h).
#include "kernel/cpu/quant/quant_rows.h"

#include "core/half.h"

namespace lowbit::kernel::cpu::quant {

QuantizeRowFn find_quantize_row_plain(DType dtype, qdot::Level level) {
    if (level == qdot::Level::kScalar) return nullptr;
    return find_quantize_row_plain_avx2(dtype); // AVX-512 CPUs run the AVX2 code
}

int64_t decode_f16_row_checked(const uint16_t* src, float* dst, int64_t n, qdot::Level level) {
    if (level != qdot::Level::kScalar) return decode_f16_row_checked_avx2(src, dst, n);
    int64_t bad = n;
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = load_u16(src, i);
        if ((h & 0x7c00u) == 0x7c00u && bad == n) bad = i;
        dst[i] = f16_to_f32(h);
    }
    return bad;
}

#if !(defined(__x86_64__) || defined(_M_X64))
QuantizeRowFn find_quantize_row_plain_avx2(DType) {
    return nullptr;
}
int64_t decode_f16_row_checked_avx2(const uint16_t* src, float* dst, int64_t n) {
    return decode_f16_row_checked(src, dst, n, qdot::Level::kScalar);
}
#endif

} // namespace lowbit::kernel::cpu::quant
