// SPDX-License-Identifier: MIT
// Helpers for the AVX2 qdot files only (compiled with -mavx2 -mfma -mf16c). Everything here has internal
// linkage (static), so no AVX2 copy of an inline function can leak into code that runs on older CPUs.
#pragma once

#include <cstdint>
#include <cstring>
#include <immintrin.h>

namespace lowbit::kernel::cpu::qdot::avx2 {

static inline float f16(uint16_t h) {
    return _cvtsh_ss(h);
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Prefetch (T0) the cache lines of [p, p + bytes). Weight rows are short streams (a few KiB) that the hardware
// prefetchers train on too late; the dots prefetch the next row's block while they decode this row's (prefetches
// never fault: past the end of the matrix they are only wasted).
static inline void prefetch_span(const void* p, int bytes) {
    for (int off = 0; off < bytes; off += 64) _mm_prefetch(static_cast<const char*>(p) + off, _MM_HINT_T0);
}

static inline __m256i load256(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Σ over pairs of (unsigned u) * (signed s) bytes, then pairs again: 8 int32 lanes of 4 products each.
// Exact while each u*s pair sum stays within int16 (true for every caller: |u| <= 128, |s| <= 127, u*s < 2^14).
static inline __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// 16 bytes of nibbles -> 32 bytes: low nibbles (weights 0..15) in bytes 0..15, high nibbles in bytes 16..31.
static inline __m256i unpack_nibbles(const uint8_t* qs) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// 32 bits (little-endian) -> 32 bytes: byte j = 0xFF if bit j is set, else 0.
static inline __m256i expand_bits(const uint8_t* bits) {
    uint32_t h;
    std::memcpy(&h, bits, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(int(h)),
                                               _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                                                2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i mask = _mm256_set1_epi64x(0x8040201008040201LL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, mask), mask);
}

} // namespace lowbit::kernel::cpu::qdot::avx2
