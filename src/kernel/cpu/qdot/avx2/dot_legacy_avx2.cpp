// SPDX-License-Identifier: MIT
// AVX2 dots of the legacy block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) with BlockQ8 activations, 1..kMaxX activation
// rows per call. Q4_0 and Q8_0 take 8 weight rows per call (rows_q4_0 / rows_q8_0 below); Q4_1/Q5_x one row so a weight
// block is unpacked once for several tokens (prefill, batched decode). Per block of 32: weights to 32 bytes, maddubs +
// madd to 8 int32 sums, scaled by d_w * d_x into an f32 accumulator (ggml's technique). Signed weights use the sign
// trick: |w| (unsigned) times sign(w) * x (signed). Compiled with -mavx2 -mfma -mf16c.
#if defined(__AVX2__) // x86-64 builds only (kernel/CMakeLists.txt adds the flags there)
#include "kernel/cpu/qdot/avx2/avx2_util.h"
#include "kernel/cpu/qdot/qdot.h"
#include "scheme/q4_0/q4_0.h"
#include "scheme/q4_1/q4_1.h"
#include "scheme/q5_0/q5_0.h"
#include "scheme/q5_1/q5_1.h"
#include "scheme/q8_0/q8_0.h"

namespace lowbit::kernel::cpu::qdot {
namespace {

using namespace avx2;

// Per type: the block, whether levels are signed, whether it has a min (x = d*q + m), and the 32 levels.
struct Q4_1 {
    using Block = scheme::q4_1::Block;
    static constexpr bool kSigned = false, kMin = true;
    static __m256i levels(const Block& b) { return unpack_nibbles(b.qs); }
};
struct Q5_0 {
    using Block = scheme::q5_0::Block;
    static constexpr bool kSigned = true, kMin = false;
    static __m256i levels(const Block& b) {
        const __m256i hi = _mm256_and_si256(expand_bits(b.qh), _mm256_set1_epi8(0x10));
        return _mm256_sub_epi8(_mm256_or_si256(unpack_nibbles(b.qs), hi), _mm256_set1_epi8(16));
    }
};
struct Q5_1 {
    using Block = scheme::q5_1::Block;
    static constexpr bool kSigned = false, kMin = true;
    static __m256i levels(const Block& b) {
        return _mm256_or_si256(unpack_nibbles(b.qs), _mm256_and_si256(expand_bits(b.qh), _mm256_set1_epi8(0x10)));
    }
};
// NX (1..4) activation rows against weight block i, unpacked once into (u, q): acc[j] += d_w * d_x * Σ q x, and
// acc_min[j] += m_w * s_x for the types with a min. The same operations per row for any NX.
template <class T, int NX>
static inline void block_rows(const typename T::Block& b, __m256i q, __m256i u, const uint8_t* act, int64_t act_stride,
                              int64_t i, __m256* acc, float* acc_min) {
    const float dw = f16(b.d);
    for (int j = 0; j < NX; ++j) {
        const BlockQ8& x = reinterpret_cast<const BlockQ8*>(act + j * act_stride)[i];
        __m256i y = load256(x.qs);
        if constexpr (T::kSigned) y = _mm256_sign_epi8(y, q);
        acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * x.d), _mm256_cvtepi32_ps(dot_u8s8(u, y)), acc[j]);
        if constexpr (T::kMin) acc_min[j] += f16(b.m) * x.s;
    }
}

template <class T> static inline __m256i magnitudes(__m256i q) {
    return T::kSigned ? _mm256_sign_epi8(q, q) : q; // |q|
}

// 1..4 rows: accumulators in registers.
template <class T, int NX>
void dot_n(int64_t k, const typename T::Block* w, const uint8_t* act, int64_t act_stride, float* out,
           int64_t out_stride) {
    __m256 acc[NX];
    float acc_min[NX];
    for (int j = 0; j < NX; ++j) acc[j] = _mm256_setzero_ps(), acc_min[j] = 0.0f;
    for (int64_t i = 0; i < k / 32; ++i) {
        if (i % 2 == 0) prefetch_span(w + k / 32 + i, int(2 * sizeof(typename T::Block))); // the next row's
        const __m256i q = T::levels(w[i]);
        block_rows<T, NX>(w[i], q, magnitudes<T>(q), act, act_stride, i, acc, acc_min);
    }
    for (int j = 0; j < NX; ++j) out[j * out_stride] = hsum(acc[j]) + acc_min[j];
}

// 5..kMaxX rows: each block unpacked once, then passed to the rows 4 at a time (accumulators on the stack).
template <class T>
void dot_wide(int64_t k, const typename T::Block* w, const uint8_t* act, int64_t act_stride, int n_x, float* out,
              int64_t out_stride) {
    __m256 acc[kMaxX];
    float acc_min[kMaxX];
    for (int j = 0; j < kMaxX; ++j) acc[j] = _mm256_setzero_ps(), acc_min[j] = 0.0f; // unrolled, no memset call
    for (int64_t i = 0; i < k / 32; ++i) {
        if (i % 2 == 0) prefetch_span(w + k / 32 + i, int(2 * sizeof(typename T::Block)));
        const __m256i q = T::levels(w[i]), u = magnitudes<T>(q);
        int j = 0;
        for (; j + 4 <= n_x; j += 4)
            block_rows<T, 4>(w[i], q, u, act + j * act_stride, act_stride, i, acc + j, acc_min + j);
        const uint8_t* rest = act + j * act_stride;
        switch (n_x - j) {
        case 3:
            block_rows<T, 3>(w[i], q, u, rest, act_stride, i, acc + j, acc_min + j);
            break;
        case 2:
            block_rows<T, 2>(w[i], q, u, rest, act_stride, i, acc + j, acc_min + j);
            break;
        case 1:
            block_rows<T, 1>(w[i], q, u, rest, act_stride, i, acc + j, acc_min + j);
            break;
        default:
            break;
        }
    }
    for (int j = 0; j < n_x; ++j) out[j * out_stride] = hsum(acc[j]) + acc_min[j];
}

template <class T>
void dot(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out, int64_t out_stride) {
    const auto* w = static_cast<const typename T::Block*>(w_row);
    const auto* a = static_cast<const uint8_t*>(act);
    switch (n_x) {
    case 1:
        return dot_n<T, 1>(k, w, a, act_stride, out, out_stride);
    case 2:
        return dot_n<T, 2>(k, w, a, act_stride, out, out_stride);
    case 3:
        return dot_n<T, 3>(k, w, a, act_stride, out, out_stride);
    case 4:
        return dot_n<T, 4>(k, w, a, act_stride, out, out_stride);
    default:
        return dot_wide<T>(k, w, a, act_stride, n_x, out, out_stride);
    }
}

// ---- kRows (8) weight rows at once: Q4_0 and Q8_0 ----
// Per (weight row r, activation row j) and block i the exact integer sum S = Σ q_w q_x, then, in lane r of one f32
// vector per activation row, acc = fma(d_w * d_x, float(S), acc) block after block; the rows' integer sums reach
// their lanes through exact integer horizontal adds, so a row's result does not depend on the other rows of its
// group, on n_x, or on whether the single-row dot (the same kernel with every row pointer on one row) computed it.
// Against dot<T> above: 8 independent FMA chains instead of one, the activation block loaded once for 8 rows, one
// f32 conversion and one scale multiply per 8 rows, and the 8 row scales converted by one vcvtph2ps.

// The 8 rows' f16 scales of block i as 8 floats, row order.
template <class B> static inline __m256 row_scales(const uint8_t* w, int64_t w_stride, int64_t i) {
    uint64_t lo = 0, hi = 0;
    for (int r = 0; r < 4; ++r) {
        lo |= uint64_t(reinterpret_cast<const B*>(w + r * w_stride)[i].d) << (16 * r);
        hi |= uint64_t(reinterpret_cast<const B*>(w + (r + 4) * w_stride)[i].d) << (16 * r);
    }
    return _mm256_cvtph_ps(_mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo)));
}

// Q4_0: rows r and r + 4 share a register (row r's 16 bytes in the low lane). With the nibbles u = q + 8 unsigned,
// maddubs(u, x) - maddubs(8, x) = q * x per pair exactly; |q| <= 8 keeps every int16 partial sum of the tree
// within ±32768 (4 products: 4096, then 8192, 16384, and the final madd to int32).
template <int NX>
void rows_q4_0(int64_t k, const uint8_t* w, int64_t w_stride, const uint8_t* act, int64_t act_stride, int n_x,
               float* out, int64_t out_stride) {
    using B = scheme::q4_0::Block;
    const int nx = NX > 0 ? NX : n_x;
    __m256 acc[NX > 0 ? NX : kMaxX];
    for (int j = 0; j < (NX > 0 ? NX : kMaxX); ++j) acc[j] = _mm256_setzero_ps();
    const __m256i eights = _mm256_set1_epi8(8), ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < k / 32; ++i) {
        prefetch_group_ahead(w, w_stride, i, int(sizeof(B)));
        __m256i lo[4], hi[4];
        unpack_nibbles_8rows<B>(w, w_stride, i, lo, hi);
        const __m256 dw = row_scales<B>(w, w_stride, i);
        for (int j = 0; j < nx; ++j) {
            const BlockQ8& x = reinterpret_cast<const BlockQ8*>(act + j * act_stride)[i];
            const __m256i ylo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs)));
            const __m256i yhi =
                _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs + 16)));
            const __m256i c = _mm256_add_epi16(_mm256_maddubs_epi16(eights, ylo), _mm256_maddubs_epi16(eights, yhi));
            __m256i pr[4];
            for (int p = 0; p < 4; ++p)
                pr[p] = _mm256_sub_epi16(
                    _mm256_add_epi16(_mm256_maddubs_epi16(lo[p], ylo), _mm256_maddubs_epi16(hi[p], yhi)), c);
            const __m256i t = _mm256_hadd_epi16(_mm256_hadd_epi16(pr[0], pr[1]), _mm256_hadd_epi16(pr[2], pr[3]));
            const __m256i s = _mm256_madd_epi16(t, ones); // lanes: rows 0..7
            acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(x.d)), _mm256_cvtepi32_ps(s), acc[j]);
        }
    }
    for (int j = 0; j < nx; ++j) _mm256_storeu_ps(out + j * out_stride, acc[j]);
}

// Q8_0: sign trick per row (|q| unsigned times sign(q) * x), madd to 8 int32 lanes per row, then a 32-bit
// horizontal-add tree to one lane per row (|S| <= 32 * 128 * 127 < 2^24: exact in f32).
template <int NX>
void rows_q8_0(int64_t k, const uint8_t* w, int64_t w_stride, const uint8_t* act, int64_t act_stride, int n_x,
               float* out, int64_t out_stride) {
    using B = scheme::q8_0::Block;
    const int nx = NX > 0 ? NX : n_x;
    __m256 acc[NX > 0 ? NX : kMaxX];
    for (int j = 0; j < (NX > 0 ? NX : kMaxX); ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < k / 32; ++i) {
        prefetch_group_ahead(w, w_stride, i, int(sizeof(B)));
        __m256i q[8], u[8];
        for (int r = 0; r < 8; ++r) {
            q[r] = load256(reinterpret_cast<const B*>(w + r * w_stride)[i].qs);
            u[r] = _mm256_sign_epi8(q[r], q[r]);
        }
        const __m256 dw = row_scales<B>(w, w_stride, i);
        for (int j = 0; j < nx; ++j) {
            const BlockQ8& x = reinterpret_cast<const BlockQ8*>(act + j * act_stride)[i];
            const __m256i y = load256(x.qs);
            __m256i m[8];
            for (int r = 0; r < 8; ++r) m[r] = dot_u8s8(u[r], _mm256_sign_epi8(y, q[r]));
            const __m256i s = sum_rows_epi32(m);
            acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(x.d)), _mm256_cvtepi32_ps(s), acc[j]);
        }
    }
    for (int j = 0; j < nx; ++j) _mm256_storeu_ps(out + j * out_stride, acc[j]);
}

template <void (*F1)(int64_t, const uint8_t*, int64_t, const uint8_t*, int64_t, int, float*, int64_t),
          void (*F2)(int64_t, const uint8_t*, int64_t, const uint8_t*, int64_t, int, float*, int64_t),
          void (*F4)(int64_t, const uint8_t*, int64_t, const uint8_t*, int64_t, int, float*, int64_t),
          void (*FN)(int64_t, const uint8_t*, int64_t, const uint8_t*, int64_t, int, float*, int64_t)>
void rows(int64_t k, const void* w_rows, int64_t w_stride, const void* act, int64_t act_stride, int n_x, float* out,
          int64_t out_stride) {
    const auto* w = static_cast<const uint8_t*>(w_rows);
    const auto* a = static_cast<const uint8_t*>(act);
    switch (n_x) {
    case 1:
        return F1(k, w, w_stride, a, act_stride, 1, out, out_stride);
    case 2:
        return F2(k, w, w_stride, a, act_stride, 2, out, out_stride);
    case 4:
        return F4(k, w, w_stride, a, act_stride, 4, out, out_stride);
    default:
        return FN(k, w, w_stride, a, act_stride, n_x, out, out_stride);
    }
}

constexpr DotRowsFn kRowsQ4_0 = rows<rows_q4_0<1>, rows_q4_0<2>, rows_q4_0<4>, rows_q4_0<0>>;
constexpr DotRowsFn kRowsQ8_0 = rows<rows_q8_0<1>, rows_q8_0<2>, rows_q8_0<4>, rows_q8_0<0>>;

} // namespace

DotRowsFn find_dot_rows_legacy_avx2(DType dtype) {
    if (dtype == DType::kQ4_0) return kRowsQ4_0;
    if (dtype == DType::kQ8_0) return kRowsQ8_0;
    return nullptr;
}

DotFn find_dot_legacy_avx2(DType dtype) {
    switch (dtype) {
    case DType::kQ4_0:
        return dot_one<kRowsQ4_0>;
    case DType::kQ4_1:
        return dot<Q4_1>;
    case DType::kQ5_0:
        return dot<Q5_0>;
    case DType::kQ5_1:
        return dot<Q5_1>;
    case DType::kQ8_0:
        return dot_one<kRowsQ8_0>;
    default:
        return nullptr;
    }
}

} // namespace lowbit::kernel::cpu::qdot

#endif // __AVX2__
