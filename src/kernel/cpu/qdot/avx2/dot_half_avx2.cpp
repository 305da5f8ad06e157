// SPDX-License-Identifier: MIT
// AVX2 dots of F16 (F16C conversion) and BF16 (shift into the f32 high half) weight rows with f32 activations,
// 1..4 activation rows per pass (more: 4 at a time), 8 weights converted once and FMA'd into every row's accumulator.
// Compiled with -mavx2 -mfma -mf16c.
#if defined(__AVX2__) // x86-64 builds only (kernel/CMakeLists.txt adds the flags there)
#include "core/half.h"
#include "kernel/cpu/qdot/avx2/avx2_util.h"
#include "kernel/cpu/qdot/qdot.h"

namespace lowbit::kernel::cpu::qdot {
namespace {

using namespace avx2;

template <bool kBf16> static inline __m256 load8(const uint16_t* w) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
    if constexpr (kBf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

template <bool kBf16> static inline float to_f32(uint16_t h) {
    if constexpr (kBf16) {
        const uint32_t u = uint32_t(h) << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return f;
    }
    return f16(h);
}

// One (weight row, activation row) pair's result from its two accumulators; the elements past the last 8 in f32.
template <bool kBf16>
static inline float finish(__m256 acc0, __m256 acc1, const uint16_t* w, const float* x, int64_t i, int64_t k) {
    float s = hsum(_mm256_add_ps(acc0, acc1));
    for (int64_t t = i; t < k; ++t) s += to_f32<kBf16>(load_u16(w, t)) * x[t]; // w: any alignment
    return s;
}

// Two accumulators per row (16 weights per step) hide the FMA latency when NX is 1.
template <bool kBf16, int NX>
void dot_n(int64_t k, const uint16_t* w, const uint8_t* act, int64_t act_stride, float* out, int64_t out_stride) {
    const float* x[NX];
    __m256 acc0[NX], acc1[NX];
    for (int j = 0; j < NX; ++j) {
        x[j] = reinterpret_cast<const float*>(act + j * act_stride);
        acc0[j] = acc1[j] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        const __m256 w0 = load8<kBf16>(w + i), w1 = load8<kBf16>(w + i + 8);
        for (int j = 0; j < NX; ++j) {
            acc0[j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[j] + i), acc0[j]);
            acc1[j] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[j] + i + 8), acc1[j]);
        }
    }
    for (; i + 8 <= k; i += 8) {
        const __m256 w0 = load8<kBf16>(w + i);
        for (int j = 0; j < NX; ++j) acc0[j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[j] + i), acc0[j]);
    }
    for (int j = 0; j < NX; ++j) out[j * out_stride] = finish<kBf16>(acc0[j], acc1[j], w, x[j], i, k);
}

// R weight rows x X activation rows held in registers (2 R X accumulators, R X <= 6), every (row, activation row)
// pair with exactly dot_n's operations: the rows dot below tiles 8 rows x n_x activation rows with it, so a pair
// gets the same bits from either, and the rows and activations of a tile are read from L1 once per 16 weights for
// R X pairs (dot_n<4> reads 4 activation rows per weight row: L2-bound at prefill).
template <bool kBf16, int R, int X>
void tile(int64_t k, const uint16_t* const* w, const float* const* x, float* out, int64_t out_stride, const char* pf) {
    __m256 acc0[R][X], acc1[R][X];
    for (int r = 0; r < R; ++r)
        for (int j = 0; j < X; ++j) acc0[r][j] = acc1[r][j] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        if (pf) prefetch_span(pf + i * 2 * R, 2 * R * 16); // these R rows' share of the rows pf starts
        __m256 xv[X];
        for (int j = 0; j < X; ++j) xv[j] = _mm256_loadu_ps(x[j] + i);
        for (int r = 0; r < R; ++r) {
            const __m256 w0 = load8<kBf16>(w[r] + i);
            for (int j = 0; j < X; ++j) acc0[r][j] = _mm256_fmadd_ps(w0, xv[j], acc0[r][j]);
        }
        for (int j = 0; j < X; ++j) xv[j] = _mm256_loadu_ps(x[j] + i + 8);
        for (int r = 0; r < R; ++r) {
            const __m256 w1 = load8<kBf16>(w[r] + i + 8);
            for (int j = 0; j < X; ++j) acc1[r][j] = _mm256_fmadd_ps(w1, xv[j], acc1[r][j]);
        }
    }
    for (; i + 8 <= k; i += 8)
        for (int r = 0; r < R; ++r) {
            const __m256 w0 = load8<kBf16>(w[r] + i);
            for (int j = 0; j < X; ++j) acc0[r][j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[j] + i), acc0[r][j]);
        }
    for (int r = 0; r < R; ++r)
        for (int j = 0; j < X; ++j) out[j * out_stride + r] = finish<kBf16>(acc0[r][j], acc1[r][j], w[r], x[j], i, k);
}

// kRows weight rows as 3 + 3 + 2 against X activation rows. pf: where the rows kPrefetchGroups (avx2_util.h) groups
// ahead start (first activation pass only), or null.
template <bool kBf16, int X>
void rows_x(int64_t k, const uint16_t* const* w, const float* const* x, float* out, int64_t out_stride, const char* pf,
            int64_t w_stride) {
    tile<kBf16, 3, X>(k, w, x, out, out_stride, pf);
    tile<kBf16, 3, X>(k, w + 3, x, out + 3, out_stride, pf ? pf + 3 * w_stride : nullptr);
    tile<kBf16, 2, X>(k, w + 6, x, out + 6, out_stride, pf ? pf + 6 * w_stride : nullptr);
}

// Activation rows in pairs (a last one alone). At prefill (m > 32) F16/BF16 stay on dequantize + SGEMM: this
// measured 0.76-0.82x of it at m = 128 (kernel_bench, 2048x2048 and 5632x2048).
template <bool kBf16>
void rows(int64_t k, const void* w_rows, int64_t w_stride, const void* act, int64_t act_stride, int n_x, float* out,
          int64_t out_stride) {
    const uint16_t* w[kRows];
    for (int r = 0; r < kRows; ++r)
        w[r] = reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(w_rows) + r * w_stride);
    const auto* a = static_cast<const uint8_t*>(act);
    const char* pf = static_cast<const char*>(w_rows) + kPrefetchGroups * kRows * w_stride;
    int j = 0;
    for (; j + 2 <= n_x; j += 2) {
        const float* x[2] = {reinterpret_cast<const float*>(a + j * act_stride),
                             reinterpret_cast<const float*>(a + (j + 1) * act_stride)};
        rows_x<kBf16, 2>(k, w, x, out + j * out_stride, out_stride, j == 0 ? pf : nullptr, w_stride);
    }
    if (j < n_x) {
        const float* x[1] = {reinterpret_cast<const float*>(a + j * act_stride)};
        rows_x<kBf16, 1>(k, w, x, out + j * out_stride, out_stride, j == 0 ? pf : nullptr, w_stride);
    }
}

template <bool kBf16>
void dot(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out, int64_t out_stride) {
    const auto* w = static_cast<const uint16_t*>(w_row);
    const auto* a = static_cast<const uint8_t*>(act);
    for (; n_x > 4; n_x -= 4, a += 4 * act_stride, out += 4 * out_stride) // 4 rows at a time
        dot_n<kBf16, 4>(k, w, a, act_stride, out, out_stride);
    switch (n_x) {
    case 1:
        return dot_n<kBf16, 1>(k, w, a, act_stride, out, out_stride);
    case 2:
        return dot_n<kBf16, 2>(k, w, a, act_stride, out, out_stride);
    case 3:
        return dot_n<kBf16, 3>(k, w, a, act_stride, out, out_stride);
    default:
        return dot_n<kBf16, 4>(k, w, a, act_stride, out, out_stride);
    }
}

} // namespace

DotRowsFn find_dot_rows_half_avx2(DType dtype) {
    if (dtype == DType::kF16) return rows<false>;
    if (dtype == DType::kBF16) return rows<true>;
    return nullptr;
}

DotFn find_dot_half_avx2(DType dtype) {
    if (dtype == DType::kF16) return dot<false>;
    if (dtype == DType::kBF16) return dot<true>;
    return nullptr;
}

} // namespace lowbit::kernel::cpu::qdot

#endif // __AVX2__
