// SPDX-License-Identifier: MIT
// Helpers for the AVX2 qdot files only (compiled with -mavx2 -mfma -mf16c). Everything here has internal
// linkage (static), so no AVX2 copy of an inline function can leak into code that runs on older CPUs.
#pragma once

#include "kernel/cpu/qdot/qdot.h"

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

// For the 8-row dots (kRows weight rows per call): weight rows are short streams (K = 2048 at Q4_0: 18 cache
// lines), too short for the hardware prefetchers to train on 8 of them at once. Each block step i prefetches its
// share (8 blocks of block_bytes) of the 8 rows kPrefetchGroups groups ahead (contiguous in a matrix: w_stride is
// the row size), so that group is in cache when it starts. Prefetches never fault (past the matrix: wasted only).
// Groups ahead: 1, 2, 3, 4, 6 measured on the synthetic 1B (Q4_0 tg, 2-core EPYC, shared): 1 clearly slower
// (26-31 tok/s), 2..6 within the noise (28-34); 2 keeps the distance at ~18 KiB for K = 2048.
constexpr int64_t kPrefetchGroups = 2;
static inline void prefetch_group_ahead(const uint8_t* w, int64_t w_stride, int64_t i, int block_bytes) {
    const uint8_t* p = w + kPrefetchGroups * 8 * w_stride + i * 8 * int64_t(block_bytes);
    for (int off = 0; off < 8 * block_bytes; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(p + off), _MM_HINT_T0);
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

// One weight row through an 8-row dot R: every row pointer on it (stride 0), lane 0 kept, so the single-row dot
// gives the same bits as the rows dot by construction (8x the arithmetic: only for matrices' last n_rows % 8 rows).
template <DotRowsFn R>
static void dot_one(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out,
                    int64_t out_stride) {
    float tmp[kMaxX * kRows];
    R(k, w_row, 0, act, act_stride, n_x, tmp, kRows);
    for (int j = 0; j < n_x; ++j) out[j * out_stride] = tmp[j * kRows];
}

// The 32 nibbles of block i of 8 weight rows (w, w + w_stride, …; blocks of type B with qs[16]: byte j = elements
// j, j + 16) as bytes: lo[p] / hi[p] hold rows p (low 128 bits) and p + 4 (high), elements 0..15 / 16..31.
template <class B>
static inline void unpack_nibbles_8rows(const uint8_t* w, int64_t w_stride, int64_t i, __m256i (&lo)[4],
                                        __m256i (&hi)[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int p = 0; p < 4; ++p) {
        const B& b0 = reinterpret_cast<const B*>(w + p * w_stride)[i];
        const B& b1 = reinterpret_cast<const B*>(w + (p + 4) * w_stride)[i];
        const __m256i v =
            _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b0.qs))),
                                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(b1.qs)), 1);
        lo[p] = _mm256_and_si256(v, m4);
        hi[p] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
}

// 8 vectors of 8 int32 -> one vector whose lane r is the sum of m[r]'s lanes (exact integer adds).
static inline __m256i sum_rows_epi32(const __m256i* m) {
    const __m256i g0 = _mm256_hadd_epi32(_mm256_hadd_epi32(m[0], m[1]), _mm256_hadd_epi32(m[2], m[3]));
    const __m256i g1 = _mm256_hadd_epi32(_mm256_hadd_epi32(m[4], m[5]), _mm256_hadd_epi32(m[6], m[7]));
    // g0 = [rows 0..3 (lanes 0..3 of m) | rows 0..3 (lanes 4..7)], g1 the same for rows 4..7.
    return _mm256_add_epi32(_mm256_blend_epi32(g0, g1, 0xF0), _mm256_permute2x128_si256(g0, g1, 0x21));
}

} // namespace lowbit::kernel::cpu::qdot::avx2
