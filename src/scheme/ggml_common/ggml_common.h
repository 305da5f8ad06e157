// SPDX-License-Identifier: MIT
// Shared pieces of ggml's block quantizers (ggml/src/ggml-quants.c), ported so our bytes equal llama.cpp's:
// the nearest_int rounding trick, the scale searches (make_qx/q3/qkx2/qkx3/qp_quants) and the 6-bit
// scale/min packing of Q4_K/Q5_K. Every float expression keeps ggml's operand order and float precision:
// bit-exactness depends on it (no FMA contraction: the build is ISO C++ without -ffast-math).
#pragma once

#include "core/half.h"

// ggml's reference quantizers are compiled without FMA contraction; a fused a*b+c rounds differently and changes
// bytes. GCC in ISO mode (-std=c++20) never contracts; clang contracts within a statement unless told not to.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include <cstdint>
#include <cstring>

namespace lowbit::scheme::ggml {

inline constexpr int kQkK = 256;              // elements per k-quant super-block (QK_K)
inline constexpr float kGroupMaxEps = 1e-15f; // GROUP_MAX_EPS: a group with max |x| below this is all zero

// ggml stores block scales as IEEE binary16, rounded to nearest even (GGML_FP32_TO_FP16).
inline uint16_t fp16(float f) {
    return f32_to_f16(f);
}
inline float fp32(uint16_t h) {
    return f16_to_f32(h);
}

// Round to nearest, ties to even, via the 1.5*2^23 bias. Valid for |fval| <= 4194303 (ggml asserts it).
inline int nearest_int(float fval) {
    const float val = fval + 12582912.f;
    int i;
    std::memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

// Symmetric levels L[i] in [0, 2*nmax) (stored with +nmax) and the scale; rmse_type selects the error
// weight when qw is null (1: x², 2: 1, 3: |x|, other: sqrt|x|); negative rmse_type returns early.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw);
// Q3_K's symmetric search with coordinate-descent refinement (weights x²), levels stored with +nmax.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse);
// Asymmetric (scale, min) search over nstep+1 candidate scales; *the_min receives -min (>= 0).
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min, uint8_t* Laux,
                       float rmin, float rdelta, int nstep, bool use_mad);
// As make_qkx2_quants, with weights = x² when null and a guard for levels out of range (imatrix paths).
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min, uint8_t* Laux,
                       float rmin, float rdelta, int nstep, bool use_mad);
// Non-negative values x quantized to [0, nmax] with weights (used for the block scales of the imatrix paths).
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights);

// Q4_K/Q5_K: 8 scales and 8 mins of 6 bits packed into 12 bytes.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}
// Inverse of get_scale_min_k4; call for j = 0..7 in order (j >= 4 ORs its high bits into bytes j < 4 set).
inline void set_scale_min_k4(int j, uint8_t ls, uint8_t lm, uint8_t* scales) {
    if (j < 4) {
        scales[j] = ls;
        scales[j + 4] = lm;
    } else {
        scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
        scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        scales[j - 0] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
}

} // namespace lowbit::scheme::ggml
