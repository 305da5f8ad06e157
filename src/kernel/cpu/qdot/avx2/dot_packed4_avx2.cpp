// SPDX-License-Identifier: MIT
// AVX2 dots of lowbit's repacked HF 4-bit layouts (scheme/packed4/packed4.h), 1..4 activation rows per pass (more: 4 at
// a time):
//   kI4Z x BlockQ8: the Q4_1 technique (unsigned nibbles maddubs signed x), min term −d·z·x.s per block.
//   kNF4x64 / kFP4x64 x f32: per block the 16-entry table is scaled by absmax (exactly dequantize_row's products),
//        8 nibbles at a time widen to int32 indices and look up both table halves with vpermps, a blend on bit 3
//        picks the half, then FMA into two accumulators per row. Compiled with -mavx2 -mfma -mf16c.
#if defined(__AVX2__) // x86-64 builds only (kernel/CMakeLists.txt adds the flags there)
#include "kernel/cpu/qdot/avx2/avx2_util.h"
#include "kernel/cpu/qdot/qdot.h"
#include "scheme/packed4/packed4.h"

namespace lowbit::kernel::cpu::qdot {

const float* packed4_code_table(DType dtype); // dot_packed4_scalar.cpp

namespace {

using namespace avx2;
using scheme::packed4::BlockF4x64;
using scheme::packed4::BlockI4Z;

template <int NX>
void dot_i4z_n(int64_t k, const BlockI4Z* w, const uint8_t* act, int64_t act_stride, float* out, int64_t out_stride) {
    __m256 acc[NX];
    float acc_min[NX];
    for (int j = 0; j < NX; ++j) acc[j] = _mm256_setzero_ps(), acc_min[j] = 0.0f;
    for (int64_t i = 0; i < k / 32; ++i) {
        const __m256i q = unpack_nibbles(w[i].qs);
        const float d = f16(w[i].d), m = -d * f16(w[i].z);
        for (int j = 0; j < NX; ++j) {
            const BlockQ8& x = reinterpret_cast<const BlockQ8*>(act + j * act_stride)[i];
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d * x.d), _mm256_cvtepi32_ps(dot_u8s8(q, load256(x.qs))), acc[j]);
            acc_min[j] += m * x.s;
        }
    }
    for (int j = 0; j < NX; ++j) out[j * out_stride] = hsum(acc[j]) + acc_min[j];
}

// Table lookup of 8 int32 indices in [0, 16): lanes with bit 3 set take the high half.
static inline __m256 lookup(__m256 lo, __m256 hi, __m256i idx) {
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx),
                            _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

template <int NX>
void dot_f4_n(const float* code, int64_t k, const BlockF4x64* w, const uint8_t* act, int64_t act_stride, float* out,
              int64_t out_stride) {
    const __m256 code_lo = _mm256_loadu_ps(code), code_hi = _mm256_loadu_ps(code + 8);
    const __m256i mask = _mm256_set1_epi32(0xF);
    const float* x[NX];
    __m256 acc0[NX], acc1[NX];
    for (int j = 0; j < NX; ++j) {
        x[j] = reinterpret_cast<const float*>(act + j * act_stride);
        acc0[j] = acc1[j] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < k / 64; ++i) {
        const __m256 a = _mm256_set1_ps(w[i].absmax);
        const __m256 lo = _mm256_mul_ps(code_lo, a), hi = _mm256_mul_ps(code_hi, a);
        for (int h = 0; h < 4; ++h) {
            const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w[i].qs + 8 * h)));
            const __m256 w0 = lookup(lo, hi, _mm256_and_si256(v, mask)); // weights 8h .. 8h+7
            const __m256 w1 = lookup(lo, hi, _mm256_srli_epi32(v, 4));   // weights 32+8h .. 32+8h+7
            for (int j = 0; j < NX; ++j) {
                const float* xb = x[j] + 64 * i + 8 * h;
                acc0[j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xb), acc0[j]);
                acc1[j] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xb + 32), acc1[j]);
            }
        }
    }
    for (int j = 0; j < NX; ++j) out[j * out_stride] = hsum(_mm256_add_ps(acc0[j], acc1[j]));
}

void dot_i4z(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out,
             int64_t out_stride) {
    const auto* w = static_cast<const BlockI4Z*>(w_row);
    const auto* a = static_cast<const uint8_t*>(act);
    for (; n_x > 4; n_x -= 4, a += 4 * act_stride, out += 4 * out_stride) // 4 rows at a time
        dot_i4z_n<4>(k, w, a, act_stride, out, out_stride);
    switch (n_x) {
    case 1:
        return dot_i4z_n<1>(k, w, a, act_stride, out, out_stride);
    case 2:
        return dot_i4z_n<2>(k, w, a, act_stride, out, out_stride);
    case 3:
        return dot_i4z_n<3>(k, w, a, act_stride, out, out_stride);
    default:
        return dot_i4z_n<4>(k, w, a, act_stride, out, out_stride);
    }
}

template <DType kType>
void dot_f4(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out,
            int64_t out_stride) {
    const float* code = packed4_code_table(kType);
    const auto* w = static_cast<const BlockF4x64*>(w_row);
    const auto* a = static_cast<const uint8_t*>(act);
    for (; n_x > 4; n_x -= 4, a += 4 * act_stride, out += 4 * out_stride) // 4 rows at a time
        dot_f4_n<4>(code, k, w, a, act_stride, out, out_stride);
    switch (n_x) {
    case 1:
        return dot_f4_n<1>(code, k, w, a, act_stride, out, out_stride);
    case 2:
        return dot_f4_n<2>(code, k, w, a, act_stride, out, out_stride);
    case 3:
        return dot_f4_n<3>(code, k, w, a, act_stride, out, out_stride);
    default:
        return dot_f4_n<4>(code, k, w, a, act_stride, out, out_stride);
    }
}

} // namespace

DotFn find_dot_packed4_avx2(DType dtype) {
    switch (dtype) {
    case DType::kI4Z:
        return dot_i4z;
    case DType::kNF4x64:
        return dot_f4<DType::kNF4x64>;
    case DType::kFP4x64:
        return dot_f4<DType::kFP4x64>;
    default:
        return nullptr;
    }
}

} // namespace lowbit::kernel::cpu::qdot

#endif // __AVX2__
