// SPDX-License-Identifier: MIT
// AVX2 dots of the legacy block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) with BlockQ8 activations, 1..kMaxX activation
// rows per call so a weight block is unpacked once for several tokens (prefill, batched decode). Per block of 32:
// weights to 32 bytes, maddubs + madd to 8 int32 sums, scaled by d_w * d_x into an f32 accumulator (ggml's technique).
// Signed weights use the sign trick: |w| (unsigned) times sign(w) * x (signed). Compiled with -mavx2 -mfma -mf16c.
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
struct Q4_0 {
    using Block = scheme::q4_0::Block;
    static constexpr bool kSigned = true, kMin = false;
    static __m256i levels(const Block& b) { return _mm256_sub_epi8(unpack_nibbles(b.qs), _mm256_set1_epi8(8)); }
};
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
struct Q8_0 {
    using Block = scheme::q8_0::Block;
    static constexpr bool kSigned = true, kMin = false;
    static __m256i levels(const Block& b) { return load256(b.qs); }
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

} // namespace

DotFn find_dot_legacy_avx2(DType dtype) {
    switch (dtype) {
    case DType::kQ4_0:
        return dot<Q4_0>;
    case DType::kQ4_1:
        return dot<Q4_1>;
    case DType::kQ5_0:
        return dot<Q5_0>;
    case DType::kQ5_1:
        return dot<Q5_1>;
    case DType::kQ8_0:
        return dot<Q8_0>;
    default:
        return nullptr;
    }
}

} // namespace lowbit::kernel::cpu::qdot

#endif // __AVX2__
