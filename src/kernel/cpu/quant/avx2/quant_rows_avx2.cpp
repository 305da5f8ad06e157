// SPDX-License-Identifier: MIT
// AVX2 + F16C quantization fast paths (quant_rows.h). This file alone is compiled with -mavx2 -mf16c
// -ffp-contract=off and without -mfma (kernel/CMakeLists.txt): every float operation is the reference's own
// multiply or add, rounded separately, in the reference's order, so the bytes are the scalar reference's.
// How each kernel maps the reference (scheme/<type>/<type>_ref.cpp, scheme/ggml_common):
//  Q8_0 / Q4_0: one block of 32 = four vectors; the block's max is order-free (max of non-NaN magnitudes); Q4_0's
//      signed max is the first element whose magnitude equals it (the reference's strict `>` keeps the first),
//      +0 when all are zero; std::round (half away from zero) is rebuilt from truncation, exactly.
//  Q4_K: make_qkx2_quants runs once per group of 32; here the 8 groups of a super-block are the 8 lanes, element
//      i of every group one vector (an 8x8 transpose), so each lane runs the reference loop on its group: the same
//      sequential sums, the same candidate scales, the same updates (blended by a per-lane mask).
//  Q6_K: make_qx_quants(16, 32, rmse_type 1) per group of 16, two vectors of 8 groups each, the same way.
// The callers only use this code after qdot::supported(kAvx2) (AVX2, FMA, F16C).
#include "core/half.h"
#include "kernel/cpu/quant/quant_rows.h"
#include "scheme/ggml_common/ggml_common.h"
#include "scheme/q4_0/q4_0.h"
#include "scheme/q4_k/q4_k.h"
#include "scheme/q6_k/q6_k.h"
#include "scheme/q8_0/q8_0.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace lowbit::kernel::cpu::quant {
namespace {

namespace ggml = scheme::ggml;

inline __m256 abs_ps(__m256 v) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

// Max of 8 non-NaN, non-negative values (order-free).
inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

// ggml::nearest_int on 8 lanes: the 1.5 * 2^23 bias, then the low mantissa bits.
inline __m256i vnearest_int(__m256 v) {
    const __m256 b = _mm256_add_ps(v, _mm256_set1_ps(12582912.f));
    return _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(b), _mm256_set1_epi32(0x007fffff)),
                            _mm256_set1_epi32(0x00400000));
}

inline __m256i clamp_epi32(__m256i v, int lo, int hi) {
    return _mm256_max_epi32(_mm256_set1_epi32(lo), _mm256_min_epi32(_mm256_set1_epi32(hi), v));
}

// std::round: to nearest, halves away from zero. v - trunc(v) is exact, so the test on it is exact.
inline __m256 round_away(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 f = _mm256_sub_ps(v, t);
    const __m256 half = _mm256_cmp_ps(abs_ps(f), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(half, one));
}

// The low bytes of 32 int32 values (a: 0-7, b: 8-15, c: 16-23, d: 24-31), in order: what the references'
// float -> int8_t casts store (cvttss2si, then the low byte; an Inf or NaN from a 1/d that overflowed gives 0).
inline __m256i pack_low_bytes(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i m = _mm256_set1_epi32(0xFF);
    const __m256i ab = _mm256_packus_epi32(_mm256_and_si256(a, m), _mm256_and_si256(b, m));
    const __m256i cd = _mm256_packus_epi32(_mm256_and_si256(c, m), _mm256_and_si256(d, m));
    return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}
// 16 int32 values in [0, 255] (a: 0-7, b: 8-15) -> 16 uint8, in order.
inline __m128i pack_u8_16(__m256i a, __m256i b) {
    const __m256i ab = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
    return _mm_packus_epi16(_mm256_castsi256_si128(ab), _mm256_extracti128_si256(ab, 1));
}

// r[k] (lane j) <- rows[j] (lane k): an 8x8 transpose.
inline void transpose8(__m256* r) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// xt[i] lane j = x[stride * j + i], i < n_elems (a multiple of 8): 8 groups of `stride` values, element-major.
inline void load_groups(const float* x, int stride, int n_elems, __m256* xt) {
    for (int b = 0; b < n_elems; b += 8) {
        __m256* r = xt + b;
        for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(x + stride * j + b);
        transpose8(r);
    }
}

// ---- Q8_0 ----
void quantize_row_q8_0(const float* x, void* dst, int64_t n_elems, const float*) {
    using scheme::q8_0::Block;
    auto* y = static_cast<Block*>(dst);
    const int64_t nb = n_elems / 32;
    for (int64_t i = 0; i < nb; ++i, x += 32) {
        const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        const __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        const float amax =
            hmax(_mm256_max_ps(_mm256_max_ps(abs_ps(v0), abs_ps(v1)), _mm256_max_ps(abs_ps(v2), abs_ps(v3))));
        const float d = amax / ((1 << 7) - 1);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ggml::fp16(d);
        const __m256 vid = _mm256_set1_ps(id);
        const __m256i q = pack_low_bytes(_mm256_cvtps_epi32(round_away(_mm256_mul_ps(v0, vid))),
                                         _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v1, vid))),
                                         _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v2, vid))),
                                         _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v3, vid))));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), q);
    }
}

// ---- Q4_0 ----
void quantize_row_q4_0(const float* x, void* dst, int64_t n_elems, const float*) {
    using scheme::q4_0::Block;
    auto* y = static_cast<Block*>(dst);
    const int64_t nb = n_elems / 32;
    for (int64_t i = 0; i < nb; ++i, x += 32) {
        const __m256 v[4] = {_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8), _mm256_loadu_ps(x + 16),
                             _mm256_loadu_ps(x + 24)};
        const __m256 a[4] = {abs_ps(v[0]), abs_ps(v[1]), abs_ps(v[2]), abs_ps(v[3])};
        const float amax = hmax(_mm256_max_ps(_mm256_max_ps(a[0], a[1]), _mm256_max_ps(a[2], a[3])));
        float max = 0.0f;
        if (amax > 0.0f) {
            const __m256 m = _mm256_set1_ps(amax);
            uint32_t bits = 0;
            for (int k = 0; k < 4; ++k)
                bits |= static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a[k], m, _CMP_EQ_OQ))) << (8 * k);
            max = x[__builtin_ctz(bits)];
        }
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ggml::fp16(d);
        const __m256 vid = _mm256_set1_ps(id), bias = _mm256_set1_ps(8.5f);
        __m256i t[4];
        for (int k = 0; k < 4; ++k) { // min(15, int(int8_t(x * id + 8.5f))) as a byte
            const __m256i c = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v[k], vid), bias));
            t[k] = _mm256_and_si256(
                _mm256_min_epi32(_mm256_set1_epi32(15), _mm256_srai_epi32(_mm256_slli_epi32(c, 24), 24)),
                _mm256_set1_epi32(0xFF));
        }
        const __m256i m = _mm256_set1_epi32(0xFF);
        const __m128i q = pack_u8_16(_mm256_and_si256(_mm256_or_si256(t[0], _mm256_slli_epi32(t[2], 4)), m),
                                     _mm256_and_si256(_mm256_or_si256(t[1], _mm256_slli_epi32(t[3], 4)), m));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs), q);
    }
}

// ---- Q4_K ----
// make_qkx2_quants(32, 15, x, weights, L, &the_min, Laux, -1, 0.1, 20, false) for the 8 groups of one super-block:
// lane j of xt[i] / w[i] is element i of group j. L[i] lane j receives the levels, scale / the_min the results.
void make_qkx2_x8(const __m256* xt, const __m256* w, __m256i* L, __m256* scale_out, __m256* the_min_out) {
    constexpr int n = 32, nmax = 15, nstep = 20;
    constexpr float rmin = -1.f, rdelta = 0.1f;
    const __m256 zero = _mm256_setzero_ps();
    __m256 min = xt[0], max = xt[0];
    __m256 sum_w = w[0];
    __m256 sum_x = _mm256_mul_ps(sum_w, xt[0]);
    for (int i = 1; i < n; ++i) {
        min = _mm256_min_ps(xt[i], min); // x < min ? x : min
        max = _mm256_max_ps(xt[i], max); // x > max ? x : max
        sum_w = _mm256_add_ps(sum_w, w[i]);
        sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(w[i], xt[i]));
    }
    min = _mm256_andnot_ps(_mm256_cmp_ps(min, zero, _CMP_GT_OQ), min); // if (min > 0) min = 0
    const __m256 min0 = min;
    const __m256 flat = _mm256_cmp_ps(max, min, _CMP_EQ_OQ); // lanes the reference returns early from
    const float fnmax = static_cast<float>(nmax);
    __m256 iscale = _mm256_div_ps(_mm256_set1_ps(fnmax), _mm256_sub_ps(max, min));
    __m256 scale = _mm256_div_ps(_mm256_set1_ps(1.0f), iscale);
    __m256 best_error = zero;
    for (int i = 0; i < n; ++i) {
        L[i] = clamp_epi32(vnearest_int(_mm256_mul_ps(iscale, _mm256_sub_ps(xt[i], min))), 0, nmax);
        __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(L[i])), min), xt[i]);
        diff = _mm256_mul_ps(diff, diff);
        best_error = _mm256_add_ps(best_error, _mm256_mul_ps(w[i], diff));
    }
    __m256 Laux[n];
    for (int is = 0; is <= nstep; ++is) {
        const float num = rmin + rdelta * static_cast<float>(is) + fnmax;
        iscale = _mm256_div_ps(_mm256_set1_ps(num), _mm256_sub_ps(max, min));
        __m256 sum_l = zero, sum_l2 = zero, sum_xl = zero;
        for (int i = 0; i < n; ++i) {
            const __m256 fl = _mm256_cvtepi32_ps(
                clamp_epi32(vnearest_int(_mm256_mul_ps(iscale, _mm256_sub_ps(xt[i], min))), 0, nmax));
            Laux[i] = fl;
            const __m256 wl = _mm256_mul_ps(w[i], fl);
            sum_l = _mm256_add_ps(sum_l, wl);
            sum_l2 = _mm256_add_ps(sum_l2, _mm256_mul_ps(wl, fl));
            sum_xl = _mm256_add_ps(sum_xl, _mm256_mul_ps(wl, xt[i]));
        }
        const __m256 D = _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_l2), _mm256_mul_ps(sum_l, sum_l));
        const __m256 d_pos = _mm256_cmp_ps(D, zero, _CMP_GT_OQ);
        if (_mm256_movemask_ps(d_pos) == 0) continue;
        __m256 this_scale = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_w, sum_xl), _mm256_mul_ps(sum_x, sum_l)), D);
        __m256 this_min = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_l2, sum_x), _mm256_mul_ps(sum_l, sum_xl)), D);
        const __m256 min_pos = _mm256_cmp_ps(this_min, zero, _CMP_GT_OQ);
        this_min = _mm256_andnot_ps(min_pos, this_min);
        this_scale = _mm256_blendv_ps(this_scale, _mm256_div_ps(sum_xl, sum_l2), min_pos);
        __m256 cur_error = zero;
        for (int i = 0; i < n; ++i) {
            __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(this_scale, Laux[i]), this_min), xt[i]);
            diff = _mm256_mul_ps(diff, diff);
            cur_error = _mm256_add_ps(cur_error, _mm256_mul_ps(w[i], diff));
        }
        const __m256 upd = _mm256_and_ps(d_pos, _mm256_cmp_ps(cur_error, best_error, _CMP_LT_OQ));
        if (_mm256_movemask_ps(upd) == 0) continue;
        const __m256i updi = _mm256_castps_si256(upd);
        for (int i = 0; i < n; ++i) L[i] = _mm256_blendv_epi8(L[i], _mm256_cvttps_epi32(Laux[i]), updi);
        best_error = _mm256_blendv_ps(best_error, cur_error, upd);
        scale = _mm256_blendv_ps(scale, this_scale, upd);
        min = _mm256_blendv_ps(min, this_min, upd);
    }
    const __m256i flati = _mm256_castps_si256(flat);
    for (int i = 0; i < n; ++i) L[i] = _mm256_andnot_si256(flati, L[i]);
    *scale_out = _mm256_andnot_ps(flat, scale);
    *the_min_out = _mm256_xor_ps(_mm256_blendv_ps(min, min0, flat), _mm256_set1_ps(-0.0f));
}

void quantize_block_q4_k(const float* x, scheme::q4_k::Block& y) {
    constexpr int kGroups = 8;
    __m256 xt[32], w[32];
    load_groups(x, 32, 32, xt);
    __m256 sum_x2 = _mm256_setzero_ps();
    for (int l = 0; l < 32; ++l) sum_x2 = _mm256_add_ps(sum_x2, _mm256_mul_ps(xt[l], xt[l]));
    const __m256 av_x = _mm256_sqrt_ps(_mm256_div_ps(sum_x2, _mm256_set1_ps(32.0f)));
    for (int l = 0; l < 32; ++l) w[l] = _mm256_add_ps(av_x, abs_ps(xt[l]));
    __m256i Lt[32];
    __m256 vs, vm;
    make_qkx2_x8(xt, w, Lt, &vs, &vm);
    alignas(32) float scales[kGroups], mins[kGroups];
    _mm256_store_ps(scales, vs);
    _mm256_store_ps(mins, vm);
    alignas(32) int32_t L[256]; // L[32 * j + i]
    {
        alignas(32) int32_t lane[8];
        for (int i = 0; i < 32; ++i) {
            _mm256_store_si256(reinterpret_cast<__m256i*>(lane), Lt[i]);
            for (int j = 0; j < kGroups; ++j) L[32 * j + i] = lane[j];
        }
    }
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < kGroups; ++j) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < kGroups; ++j) {
        uint8_t ls = static_cast<uint8_t>(ggml::nearest_int(inv_scale * scales[j]));
        uint8_t lm = static_cast<uint8_t>(ggml::nearest_int(inv_min * mins[j]));
        ls = std::min<uint8_t>(63, ls);
        lm = std::min<uint8_t>(63, lm);
        ggml::set_scale_min_k4(j, ls, lm, y.scales);
    }
    y.d = ggml::fp16(max_scale / 63.f);
    y.dmin = ggml::fp16(max_min / 63.f);
    // finish_block: levels from the stored scales/mins (groups with a zero scale keep L), nibble packing.
    const float d_all = ggml::fp32(y.d);
    const float m_all = ggml::fp32(y.dmin);
    for (int j = 0; j < kGroups; ++j) {
        uint8_t sc, m;
        ggml::get_scale_min_k4(j, y.scales, &sc, &m);
        const float d = d_all * static_cast<float>(sc);
        if (d == 0.0f) continue;
        const __m256 vd = _mm256_set1_ps(d), vdm = _mm256_set1_ps(m_all * static_cast<float>(m));
        for (int k = 0; k < 32; k += 8) {
            const __m256 v = _mm256_loadu_ps(x + 32 * j + k);
            const __m256i l = clamp_epi32(vnearest_int(_mm256_div_ps(_mm256_add_ps(v, vdm), vd)), 0, 15);
            _mm256_store_si256(reinterpret_cast<__m256i*>(L + 32 * j + k), l);
        }
    }
    uint8_t* q = y.qs;
    for (int j = 0; j < 256; j += 64, q += 32) {
        __m256i o[4];
        for (int k = 0; k < 4; ++k) {
            const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(L + j + 8 * k));
            const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(L + j + 32 + 8 * k));
            o[k] = _mm256_or_si256(lo, _mm256_slli_epi32(hi, 4));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), pack_low_bytes(o[0], o[1], o[2], o[3]));
    }
}

void quantize_row_q4_k(const float* src, void* dst, int64_t n_elems, const float*) {
    auto* y = static_cast<scheme::q4_k::Block*>(dst);
    const int64_t nb = n_elems / 256;
    for (int64_t i = 0; i < nb; ++i) quantize_block_q4_k(src + i * 256, y[i]);
}

// ---- Q6_K ----
// make_qx_quants(16, 32, x, L, 1, nullptr) for 8 groups of 16: lane j of xt[i] is element i of group j; L[i] gets
// the stored levels (l + 32, or 0 for an all-tiny group), the result the scale.
__m256 make_qx_x8(const __m256* xt, __m256i* L) {
    constexpr int n = 16, nmax = 32;
    const __m256 zero = _mm256_setzero_ps();
    __m256 max = zero, amax = zero;
    for (int i = 0; i < n; ++i) {
        const __m256 ax = abs_ps(xt[i]);
        const __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
        amax = _mm256_blendv_ps(amax, ax, gt);
        max = _mm256_blendv_ps(max, xt[i], gt);
    }
    const __m256 tiny = _mm256_cmp_ps(amax, _mm256_set1_ps(ggml::kGroupMaxEps), _CMP_LT_OQ);
    __m256 iscale = _mm256_div_ps(_mm256_set1_ps(static_cast<float>(-nmax)), max);
    __m256 sumlx = zero, suml2 = zero;
    for (int i = 0; i < n; ++i) {
        const __m256i l = clamp_epi32(vnearest_int(_mm256_mul_ps(iscale, xt[i])), -nmax, nmax - 1);
        L[i] = _mm256_add_epi32(l, _mm256_set1_epi32(nmax));
        const __m256 w = _mm256_mul_ps(xt[i], xt[i]);
        const __m256 fl = _mm256_cvtepi32_ps(l);
        sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(w, xt[i]), fl));
        suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(w, fl), fl));
    }
    __m256 scale = _mm256_and_ps(_mm256_cmp_ps(suml2, zero, _CMP_NEQ_UQ), _mm256_div_ps(sumlx, suml2));
    __m256 best = _mm256_mul_ps(scale, sumlx);
    __m256i lc[n];
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        const float num = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is));
        iscale = _mm256_div_ps(_mm256_set1_ps(num), max);
        sumlx = suml2 = zero;
        for (int i = 0; i < n; ++i) {
            const __m256i l = clamp_epi32(vnearest_int(_mm256_mul_ps(iscale, xt[i])), -nmax, nmax - 1);
            lc[i] = l;
            const __m256 w = _mm256_mul_ps(xt[i], xt[i]);
            const __m256 fl = _mm256_cvtepi32_ps(l);
            sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(w, xt[i]), fl));
            suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(w, fl), fl));
        }
        const __m256 upd =
            _mm256_and_ps(_mm256_cmp_ps(suml2, zero, _CMP_GT_OQ),
                          _mm256_cmp_ps(_mm256_mul_ps(sumlx, sumlx), _mm256_mul_ps(best, suml2), _CMP_GT_OQ));
        if (_mm256_movemask_ps(upd) == 0) continue;
        const __m256i updi = _mm256_castps_si256(upd);
        for (int i = 0; i < n; ++i)
            L[i] = _mm256_blendv_epi8(L[i], _mm256_add_epi32(lc[i], _mm256_set1_epi32(nmax)), updi);
        const __m256 new_scale = _mm256_div_ps(sumlx, suml2);
        scale = _mm256_blendv_ps(scale, new_scale, upd);
        best = _mm256_blendv_ps(best, _mm256_mul_ps(new_scale, sumlx), upd);
    }
    const __m256i tinyi = _mm256_castps_si256(tiny);
    for (int i = 0; i < n; ++i) L[i] = _mm256_andnot_si256(tinyi, L[i]);
    return _mm256_andnot_ps(tiny, scale);
}

void quantize_block_q6_k(const float* x, scheme::q6_k::Block& y) {
    constexpr int kGroups = 16;
    alignas(32) int32_t L[256]; // L[16 * g + i]
    alignas(32) float scales[kGroups];
    for (int h = 0; h < 2; ++h) {
        __m256 xt[16];
        __m256i Lt[16];
        load_groups(x + 128 * h, 16, 16, xt);
        _mm256_store_ps(scales + 8 * h, make_qx_x8(xt, Lt));
        alignas(32) int32_t lane[8];
        for (int i = 0; i < 16; ++i) {
            _mm256_store_si256(reinterpret_cast<__m256i*>(lane), Lt[i]);
            for (int j = 0; j < 8; ++j) L[16 * (8 * h + j) + i] = lane[j];
        }
    }
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < kGroups; ++ib) {
        const float abs_scale = std::fabs(scales[ib]);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scales[ib];
        }
    }
    if (max_abs_scale < ggml::kGroupMaxEps) {
        std::memset(&y, 0, sizeof(y));
        y.d = ggml::fp16(0.f);
        return;
    }
    const float iscale = -128.f / max_scale;
    y.d = ggml::fp16(1 / iscale);
    for (int ib = 0; ib < kGroups; ++ib)
        y.scales[ib] = static_cast<int8_t>(std::min(127, ggml::nearest_int(iscale * scales[ib])));
    const float d_all = ggml::fp32(y.d);
    for (int j = 0; j < kGroups; ++j) {
        const float d = d_all * static_cast<float>(y.scales[j]);
        if (d == 0.0f) continue;
        const __m256 vd = _mm256_set1_ps(d);
        for (int k = 0; k < 16; k += 8) {
            const __m256i l = clamp_epi32(vnearest_int(_mm256_div_ps(_mm256_loadu_ps(x + 16 * j + k), vd)), -32, 31);
            _mm256_store_si256(reinterpret_cast<__m256i*>(L + 16 * j + k), _mm256_add_epi32(l, _mm256_set1_epi32(32)));
        }
    }
    uint8_t* ql = y.ql;
    uint8_t* qh = y.qh;
    for (int j = 0; j < 256; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; ++l) {
            const int32_t q1 = L[j + l + 0], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
            ql[l + 0] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
            ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
            qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
        }
    }
}

void quantize_row_q6_k(const float* src, void* dst, int64_t n_elems, const float*) {
    auto* y = static_cast<scheme::q6_k::Block*>(dst);
    const int64_t nb = n_elems / 256;
    for (int64_t i = 0; i < nb; ++i) quantize_block_q6_k(src + i * 256, y[i]);
}

} // namespace

QuantizeRowFn find_quantize_row_plain_avx2(DType dtype) {
    switch (dtype) {
    case DType::kQ8_0:
        return quantize_row_q8_0;
    case DType::kQ4_0:
        return quantize_row_q4_0;
    case DType::kQ4_K:
        return quantize_row_q4_k;
    case DType::kQ6_K:
        return quantize_row_q6_k;
    default:
        return nullptr;
    }
}

int64_t decode_f16_row_checked_avx2(const uint16_t* src, float* dst, int64_t n) {
    const __m128i exp_mask = _mm_set1_epi16(0x7c00);
    __m128i bad = _mm_setzero_si128();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
        bad = _mm_or_si128(bad, _mm_cmpeq_epi16(_mm_and_si128(h, exp_mask), exp_mask));
    }
    const int64_t tail = i;
    for (; i < n; ++i) dst[i] = f16_to_f32(load_u16(src, i));
    for (int64_t k = _mm_testz_si128(bad, bad) ? tail : 0; k < n; ++k) // the first bad index, if any
        if ((load_u16(src, k) & 0x7c00u) == 0x7c00u) return k;
    return n;
}

} // namespace lowbit::kernel::cpu::quant
#endif
