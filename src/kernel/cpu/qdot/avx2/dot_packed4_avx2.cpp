// SPDX-License-Identifier: MIT
// AVX2 dots of lowbit's repacked HF 4-bit layouts (scheme/packed4/packed4.h), kRows (8) weight rows per call as the
// Q4_0 ones (dot_legacy_avx2.cpp): each activation block loaded once for the 8 rows, the rows' exact integer sums
// brought to one f32 lane per row by integer horizontal adds, then per block the scalar level's float steps in the
// same order (scalar/dot_packed4_scalar.cpp: products and sums, no fma; this file is compiled with
// -ffp-contract=off so the compiler fuses none), so every level-AVX2 result is the scalar level's bits:
//   kI4Z x BlockQ8: unsigned nibbles maddubs signed x (the Q4_1 technique), acc += d·dx·S − d·z·x.s per block.
//   kI8Z x BlockQ8: the codes shifted to signed bytes, the Q8_0 sign trick, + 128·Σ x; then as kI4Z.
//   kNF4x64 / kFP4x64 x BlockQ8: the int16 codes (qdot.h, packed4_code16_table) split into a low-byte and a
//        high-byte table; per 32 weights two pshufb look the bytes up, unpacklo/hi_epi8 join them into int16 in the
//        same lane order as the activations sign-extended by unpacklo/hi_epi8(x, x < 0) (once per activation block
//        for the 8 rows), and two madd_epi16 give 8 exact int32 sums; acc += absmax/32767 · dx · S per 32.
// The single-row dots are the 8-row kernels with every row on one (dot_one). Weight rows of the group 2 ahead are
// prefetched (prefetch_group_ahead). Compiled with -mavx2 -mfma -mf16c -ffp-contract=off.
#if defined(__AVX2__) // x86-64 builds only (kernel/CMakeLists.txt adds the flags there)
#include "kernel/cpu/qdot/avx2/avx2_util.h"
#include "kernel/cpu/qdot/qdot.h"
#include "scheme/packed4/packed4.h"

namespace lowbit::kernel::cpu::qdot {

namespace {

using namespace avx2;
using scheme::packed4::BlockF4x64;
using scheme::packed4::BlockI4Z;
using scheme::packed4::BlockI8Z;

// The 8 rows' (d, z) of kI4Z / kI8Z block i (block_bytes apart) as two vectors of 8 floats, row order.
static inline void i4z_scales(const uint8_t* w, int64_t w_stride, int64_t i, int64_t block_bytes, __m256* d,
                              __m256* z) {
    int32_t dz[8]; // d in the low 16 bits, z in the high (little-endian block header)
    for (int r = 0; r < 8; ++r) std::memcpy(&dz[r], w + r * w_stride + i * block_bytes, 4);
    const __m256i v = _mm256_setr_epi32(dz[0], dz[1], dz[2], dz[3], dz[4], dz[5], dz[6], dz[7]);
    const __m256i p = _mm256_packus_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)), _mm256_srli_epi32(v, 16));
    const __m256i o = _mm256_permute4x64_epi64(p, 0xD8); // [d0..3 z0..3 | d4..7 z4..7] -> [d0..7 | z0..7]
    *d = _mm256_cvtph_ps(_mm256_castsi256_si128(o));
    *z = _mm256_cvtph_ps(_mm256_extracti128_si256(o, 1));
}

// kI4Z / kI8Z, per block: the scalar's acc += d * dx * float(S) - d * z * x.s in each row's lane (S: the rows' exact
// integer sums), product by product (no contraction), so the rows dots give the scalar level's bits.
static inline __m256 affine_block_acc(__m256 acc, __m256 dw, __m256 dz, const BlockQ8& x, __m256i s) {
    const __m256 v = _mm256_sub_ps(_mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(x.d)), _mm256_cvtepi32_ps(s)),
                                   _mm256_mul_ps(dz, _mm256_set1_ps(x.s)));
    return _mm256_add_ps(acc, v);
}

// kI4Z: rows p and p + 4 share a register (row p's 16 nibble bytes in the low lane), as rows_q4_0. Codes 0..15 are
// maddubs' unsigned operand directly; every int16 partial sum of the tree stays within 16 · 15 · 128 = 30720
// (4 products after maddubs + add, then 8 and 16 after the two hadds; the final madd to int32): exact for any
// int8 x, -128 included.
template <int NX>
void rows_i4z(int64_t k, const uint8_t* w, int64_t w_stride, const uint8_t* act, int64_t act_stride, int n_x,
              float* out, int64_t out_stride) {
    using B = BlockI4Z;
    const int nx = NX > 0 ? NX : n_x;
    __m256 acc[NX > 0 ? NX : kMaxX];
    for (int j = 0; j < (NX > 0 ? NX : kMaxX); ++j) acc[j] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < k / 32; ++i) {
        prefetch_group_ahead(w, w_stride, i, int(sizeof(B)));
        __m256i lo[4], hi[4];
        unpack_nibbles_8rows<B>(w, w_stride, i, lo, hi);
        __m256 dw, zw;
        i4z_scales(w, w_stride, i, int64_t(sizeof(B)), &dw, &zw);
        const __m256 dz = _mm256_mul_ps(dw, zw);
        for (int j = 0; j < nx; ++j) {
            const BlockQ8& x = reinterpret_cast<const BlockQ8*>(act + j * act_stride)[i];
            const __m256i ylo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs)));
            const __m256i yhi =
                _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs + 16)));
            __m256i pr[4];
            for (int p = 0; p < 4; ++p)
                pr[p] = _mm256_add_epi16(_mm256_maddubs_epi16(lo[p], ylo), _mm256_maddubs_epi16(hi[p], yhi));
            const __m256i t = _mm256_hadd_epi16(_mm256_hadd_epi16(pr[0], pr[1]), _mm256_hadd_epi16(pr[2], pr[3]));
            acc[j] = affine_block_acc(acc[j], dw, dz, x, _mm256_madd_epi16(t, ones)); // lanes: rows 0..7
        }
    }
    for (int j = 0; j < nx; ++j) _mm256_storeu_ps(out + j * out_stride, acc[j]);
}

// kI8Z: codes 0..255 as signed bytes q' = q - 128 (xor 0x80), then the Q8_0 sign trick (|q'| <= 128 unsigned
// times sign(q')·x, |x| <= 127 as BlockQ8 quantizes: every int16 pair sum within ±32512), and Σ q·x = Σ q'·x +
// 128·Σ x with the second sum (maddubs of 128 and x: pairs within ±32512) added in each row's int32 lanes before the
// row tree. |S| <= 32 · 255 · 127 < 2^24: float(S) is exact, then the scalar's float steps as rows_i4z.
template <int NX>
void rows_i8z(int64_t k, const uint8_t* w, int64_t w_stride, const uint8_t* act, int64_t act_stride, int n_x,
              float* out, int64_t out_stride) {
    using B = BlockI8Z;
    const int nx = NX > 0 ? NX : n_x;
    __m256 acc[NX > 0 ? NX : kMaxX];
    for (int j = 0; j < (NX > 0 ? NX : kMaxX); ++j) acc[j] = _mm256_setzero_ps();
    const __m256i flip = _mm256_set1_epi8(char(0x80));
    for (int64_t i = 0; i < k / 32; ++i) {
        prefetch_group_ahead(w, w_stride, i, int(sizeof(B)));
        __m256i q[8], u[8];
        for (int r = 0; r < 8; ++r) {
            q[r] = _mm256_xor_si256(load256(reinterpret_cast<const B*>(w + r * w_stride)[i].qs), flip);
            u[r] = _mm256_sign_epi8(q[r], q[r]); // |q'|: -128 stays 0x80, i.e. 128 unsigned
        }
        __m256 dw, zw;
        i4z_scales(w, w_stride, i, int64_t(sizeof(B)), &dw, &zw);
        const __m256 dz = _mm256_mul_ps(dw, zw);
        for (int j = 0; j < nx; ++j) {
            const BlockQ8& x = reinterpret_cast<const BlockQ8*>(act + j * act_stride)[i];
            const __m256i y = load256(x.qs);
            const __m256i c = dot_u8s8(flip, y); // 128·x, in 8 int32 lanes
            __m256i m[8];
            for (int r = 0; r < 8; ++r) m[r] = _mm256_add_epi32(dot_u8s8(u[r], _mm256_sign_epi8(y, q[r])), c);
            acc[j] = affine_block_acc(acc[j], dw, dz, x, sum_rows_epi32(m));
        }
    }
    for (int j = 0; j < nx; ++j) _mm256_storeu_ps(out + j * out_stride, acc[j]);
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

template <DType kType> static const Code16Bytes& code16_table() {
    static const Code16Bytes t = code16_bytes(packed4_code16_table(kType));
    return t;
}

// kNF4x64 / kFP4x64: weight block i (64) against activation blocks 2i (low nibbles) and 2i + 1 (high nibbles).
// Per half h the 8 rows' 32 codes become 2 x 16 int16 (c16 in activation lane order), decoded once for the n_x
// activation rows; per activation row 2 madd + add per weight row, then sum_rows_epi32. |S| <= 32 · 32767 · 128
// < 2^31; float(S) rounds as the scalar's float(sum).
template <DType kType, int NX>
void rows_f4(int64_t k, const uint8_t* w, int64_t w_stride, const uint8_t* act, int64_t act_stride, int n_x, float* out,
             int64_t out_stride) {
    using B = BlockF4x64;
    const Code16Bytes& t = code16_table<kType>();
    const int nx = NX > 0 ? NX : n_x;
    __m256 acc[NX > 0 ? NX : kMaxX];
    for (int j = 0; j < (NX > 0 ? NX : kMaxX); ++j) acc[j] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
    for (int64_t i = 0; i < k / 64; ++i) {
        prefetch_group_ahead(w, w_stride, i, int(sizeof(B)));
        const B* b[8];
        for (int r = 0; r < 8; ++r) b[r] = reinterpret_cast<const B*>(w + r * w_stride) + i;
        const __m256 dw = _mm256_mul_ps(_mm256_setr_ps(b[0]->absmax, b[1]->absmax, b[2]->absmax, b[3]->absmax,
                                                       b[4]->absmax, b[5]->absmax, b[6]->absmax, b[7]->absmax),
                                        _mm256_set1_ps(kInvCode16Scale));
        for (int h = 0; h < 2; ++h) {
            if constexpr (NX == 1) { // each row's codes straight into its madds (16 decoded vectors would spill)
                const BlockQ8& x = reinterpret_cast<const BlockQ8*>(act)[2 * i + h];
                const __m256i xv = load256(x.qs), sx = _mm256_cmpgt_epi8(zero, xv);
                const __m256i x0 = _mm256_unpacklo_epi8(xv, sx), x1 = _mm256_unpackhi_epi8(xv, sx);
                __m256i m[8];
                for (int r = 0; r < 8; ++r) {
                    const __m256i q = load256(b[r]->qs);
                    const __m256i idx = _mm256_and_si256(h == 0 ? q : _mm256_srli_epi16(q, 4), m4);
                    const __m256i l = _mm256_shuffle_epi8(t.lo, idx), hb = _mm256_shuffle_epi8(t.hi, idx);
                    m[r] = _mm256_add_epi32(_mm256_madd_epi16(_mm256_unpacklo_epi8(l, hb), x0),
                                            _mm256_madd_epi16(_mm256_unpackhi_epi8(l, hb), x1));
                }
                const __m256i s = sum_rows_epi32(m);
                acc[0] =
                    _mm256_add_ps(acc[0], _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(x.d)), _mm256_cvtepi32_ps(s)));
                continue;
            }
            __m256i c0[8], c1[8]; // row r's int16 codes: weights 0..7, 16..23 | 8..15, 24..31 of the half
            for (int r = 0; r < 8; ++r) {
                const __m256i q = load256(b[r]->qs);
                const __m256i idx = _mm256_and_si256(h == 0 ? q : _mm256_srli_epi16(q, 4), m4);
                const __m256i l = _mm256_shuffle_epi8(t.lo, idx), hb = _mm256_shuffle_epi8(t.hi, idx);
                c0[r] = _mm256_unpacklo_epi8(l, hb);
                c1[r] = _mm256_unpackhi_epi8(l, hb);
            }
            for (int j = 0; j < nx; ++j) {
                const BlockQ8& x = reinterpret_cast<const BlockQ8*>(act + j * act_stride)[2 * i + h];
                const __m256i xv = load256(x.qs), sx = _mm256_cmpgt_epi8(zero, xv);
                const __m256i x0 = _mm256_unpacklo_epi8(xv, sx), x1 = _mm256_unpackhi_epi8(xv, sx);
                __m256i m[8];
                for (int r = 0; r < 8; ++r)
                    m[r] = _mm256_add_epi32(_mm256_madd_epi16(c0[r], x0), _mm256_madd_epi16(c1[r], x1));
                const __m256i s = sum_rows_epi32(m);
                acc[j] =
                    _mm256_add_ps(acc[j], _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(x.d)), _mm256_cvtepi32_ps(s)));
            }
        }
    }
    for (int j = 0; j < nx; ++j) _mm256_storeu_ps(out + j * out_stride, acc[j]);
}

using RowsKernel = void (*)(int64_t, const uint8_t*, int64_t, const uint8_t*, int64_t, int, float*, int64_t);

template <RowsKernel F1, RowsKernel F2, RowsKernel F4, RowsKernel FN>
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

constexpr DotRowsFn kRowsI4Z = rows<rows_i4z<1>, rows_i4z<2>, rows_i4z<4>, rows_i4z<0>>;
constexpr DotRowsFn kRowsI8Z = rows<rows_i8z<1>, rows_i8z<2>, rows_i8z<4>, rows_i8z<0>>;
constexpr DotRowsFn kRowsNF4 = rows<rows_f4<DType::kNF4x64, 1>, rows_f4<DType::kNF4x64, 2>, rows_f4<DType::kNF4x64, 4>,
                                    rows_f4<DType::kNF4x64, 0>>;
constexpr DotRowsFn kRowsFP4 = rows<rows_f4<DType::kFP4x64, 1>, rows_f4<DType::kFP4x64, 2>, rows_f4<DType::kFP4x64, 4>,
                                    rows_f4<DType::kFP4x64, 0>>;

} // namespace

DotRowsFn find_dot_rows_packed4_avx2(DType dtype) {
    switch (dtype) {
    case DType::kI4Z:
        return kRowsI4Z;
    case DType::kI8Z:
        return kRowsI8Z;
    case DType::kNF4x64:
        return kRowsNF4;
    case DType::kFP4x64:
        return kRowsFP4;
    default:
        return nullptr;
    }
}

DotFn find_dot_packed4_avx2(DType dtype) {
    switch (dtype) {
    case DType::kI4Z:
        return dot_one<kRowsI4Z>;
    case DType::kI8Z:
        return dot_one<kRowsI8Z>;
    case DType::kNF4x64:
        return dot_one<kRowsNF4>;
    case DType::kFP4x64:
        return dot_one<kRowsFP4>;
    default:
        return nullptr;
    }
}

} // namespace lowbit::kernel::cpu::qdot

#endif // __AVX2__
