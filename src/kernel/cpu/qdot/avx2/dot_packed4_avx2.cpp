// SPDX-License-Identifier: MIT
// AVX2 dots of lowbit's repacked HF 4-bit layouts (scheme/packed4/packed4.h), 1..4 activation rows per pass (more: 4 at
// a time):
//   kI4Z x BlockQ8: the Q4_1 technique (unsigned nibbles maddubs signed x), min term −d·z·x.s per block.
//   kNF4x64 / kFP4x64 x BlockQ8: the int16 codes (qdot.h, packed4_code16_table) split into a low-byte and a
//        high-byte table; per 32 weights two pshufb look the bytes up, unpacklo/hi_epi8 join them into int16 in the
//        same lane order as the activations sign-extended by unpacklo/hi_epi8(x, x < 0), and two madd_epi16 give
//        8 exact int32 sums, scaled by absmax·dx/32767. Compiled with -mavx2 -mfma -mf16c.
#if defined(__AVX2__) // x86-64 builds only (kernel/CMakeLists.txt adds the flags there)
#include "kernel/cpu/qdot/avx2/avx2_util.h"
#include "kernel/cpu/qdot/qdot.h"
#include "scheme/packed4/packed4.h"

namespace lowbit::kernel::cpu::qdot {

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

// The low and the high bytes of the 16 int16 codes, each table in both 128-bit lanes (for pshufb).
struct Code16Bytes {
    __m256i lo, hi;
};

static inline Code16Bytes code16_bytes(const int16_t* c16) {
    alignas(16) uint8_t lo[16], hi[16];
    for (int i = 0; i < 16; ++i) lo[i] = uint8_t(uint16_t(c16[i]) & 0xFF), hi[i] = uint8_t(uint16_t(c16[i]) >> 8);
    const __m128i l = _mm_load_si128(reinterpret_cast<const __m128i*>(lo));
    const __m128i h = _mm_load_si128(reinterpret_cast<const __m128i*>(hi));
    return {_mm256_set_m128i(l, l), _mm256_set_m128i(h, h)};
}

// Σ c16[idx_j] · x_j over 32 weights (idx: 32 code indices in bytes) as 8 int32 lanes, exact.
static inline __m256i code16_dot(const Code16Bytes& t, __m256i idx, __m256i x) {
    const __m256i lo = _mm256_shuffle_epi8(t.lo, idx), hi = _mm256_shuffle_epi8(t.hi, idx);
    const __m256i sx = _mm256_cmpgt_epi8(_mm256_setzero_si256(), x);
    return _mm256_add_epi32(_mm256_madd_epi16(_mm256_unpacklo_epi8(lo, hi), _mm256_unpacklo_epi8(x, sx)),
                            _mm256_madd_epi16(_mm256_unpackhi_epi8(lo, hi), _mm256_unpackhi_epi8(x, sx)));
}

template <int NX>
void dot_f4_n(const Code16Bytes& t, int64_t k, const BlockF4x64* w, const uint8_t* act, int64_t act_stride, float* out,
              int64_t out_stride) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[NX];
    for (int j = 0; j < NX; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < k / 64; ++i) {
        const float dw = w[i].absmax * kInvCode16Scale;
        const __m256i q = load256(w[i].qs);
        const __m256i idx[2] = {_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4)};
        for (int h = 0; h < 2; ++h)
            for (int j = 0; j < NX; ++j) {
                const BlockQ8& x = reinterpret_cast<const BlockQ8*>(act + j * act_stride)[2 * i + h];
                acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * x.d),
                                         _mm256_cvtepi32_ps(code16_dot(t, idx[h], load256(x.qs))), acc[j]);
            }
    }
    for (int j = 0; j < NX; ++j) out[j * out_stride] = hsum(acc[j]);
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
    static const Code16Bytes t = code16_bytes(packed4_code16_table(kType));
    const auto* w = static_cast<const BlockF4x64*>(w_row);
    const auto* a = static_cast<const uint8_t*>(act);
    for (; n_x > 4; n_x -= 4, a += 4 * act_stride, out += 4 * out_stride) // 4 rows at a time
        dot_f4_n<4>(t, k, w, a, act_stride, out, out_stride);
    switch (n_x) {
    case 1:
        return dot_f4_n<1>(t, k, w, a, act_stride, out, out_stride);
    case 2:
        return dot_f4_n<2>(t, k, w, a, act_stride, out, out_stride);
    case 3:
        return dot_f4_n<3>(t, k, w, a, act_stride, out, out_stride);
    default:
        return dot_f4_n<4>(t, k, w, a, act_stride, out, out_stride);
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
