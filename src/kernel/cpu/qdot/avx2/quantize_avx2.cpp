// SPDX-License-Identifier: MIT
// AVX2 quantize_row_q8k: the portable one's operations (qdot.cpp) lane by lane, so the same bytes for any input
// (also inf / NaN / denormal-scale blocks): amax as max(|x|, amax) ignoring NaN like std::max (a max is exact in any
// order), d = amax / 127 and id = 1 / d as the same scalars, q = x * id rounded by the same 1.5 * 2^23 bias trick
// and truncated to its low byte as static_cast<int8_t> does, bsums summed from the stored bytes.
// Compiled with -mavx2 -mfma -mf16c.
#if defined(__AVX2__)
#include "kernel/cpu/qdot/avx2/avx2_util.h"
#include "kernel/cpu/qdot/qdot.h"

namespace lowbit::kernel::cpu::qdot {

void quantize_row_q8k_avx2(const float* x, BlockQ8K* y, int64_t k) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 bias = _mm256_set1_ps(12582912.f);
    const __m256i mant = _mm256_set1_epi32(0x007fffff), half = _mm256_set1_epi32(0x00400000);
    // Byte 0 of each int32 lane to bytes 0..3 of its 128-bit lane, then the two lanes' 4-byte groups in order.
    const __m256i low_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12,
                                               -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < k / 256; ++i) {
        const float* xb = x + 256 * i;
        __m256 mx = _mm256_setzero_ps();
        // max_ps(v, mx) = v > mx ? v : mx: a NaN v leaves mx, as std::max(amax, v) leaves amax.
        for (int j = 0; j < 256; j += 8) mx = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(xb + j), abs_mask), mx);
        alignas(32) float m8[8];
        _mm256_store_ps(m8, mx);
        float amax = 0.0f;
        for (float v : m8) amax = amax < v ? v : amax;
        const float d = amax / 127.0f;
        const float id = d > 0.0f ? 1.0f / d : 0.0f;
        y[i].d = d;
        const __m256 idv = _mm256_set1_ps(id);
        for (int c = 0; c < 32; ++c) { // 8 elements per step
            const __m256 b = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(xb + 8 * c), idv), bias);
            const __m256i q = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(b), mant), half);
            const __m256i lo = _mm256_shuffle_epi8(q, low_bytes); // bytes 0..3 and 16..19
            const uint32_t w0 = uint32_t(_mm256_extract_epi32(lo, 0)), w1 = uint32_t(_mm256_extract_epi32(lo, 4));
            const uint64_t w = uint64_t(w0) | (uint64_t(w1) << 32);
            std::memcpy(y[i].qs + 8 * c, &w, 8);
        }
        __m256i g[16];
        for (int gi = 0; gi < 16; ++gi)
            g[gi] = _mm256_madd_epi16(
                _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y[i].qs + 16 * gi))), ones);
        const __m256i s0 = avx2::sum_rows_epi32(g), s1 = avx2::sum_rows_epi32(g + 8);
        const __m256i s16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(s0, s1), 0xD8); // |bsum| <= 16 * 128
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].bsums), s16);
    }
}

} // namespace lowbit::kernel::cpu::qdot

#endif // __AVX2__
