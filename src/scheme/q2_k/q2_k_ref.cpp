// SPDX-License-Identifier: MIT
// Q2_K reference, bit-exact with ggml's quantize_row_q2_K_ref / quantize_row_q2_K_impl / dequantize_row_q2_K.
#include "scheme/ggml_common/ggml_common.h"
#include "scheme/q2_k/q2_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lowbit::scheme::q2_k {
namespace {

using ggml::nearest_int;
constexpr int kGroups = kBlockElems / 16;

// Re-derives the 2-bit levels from the stored (rounded) scales; groups with a zero scale keep L.
void requantize(const float* x, const Block& b, uint8_t* L) {
    const float dm_all = ggml::fp32(b.d);
    const float mm_all = ggml::fp32(b.dmin);
    for (int j = 0; j < kGroups; ++j) {
        const float d = dm_all * static_cast<float>(b.scales[j] & 0xF);
        if (d == 0.0f) continue;
        const float m = mm_all * static_cast<float>(b.scales[j] >> 4);
        for (int ii = 0; ii < 16; ++ii) {
            const int l = nearest_int((x[16 * j + ii] + m) / d);
            L[16 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
        }
    }
}

void pack(const uint8_t* L, Block& b) {
    for (int j = 0; j < kBlockElems; j += 128) {
        for (int l = 0; l < 32; ++l) {
            b.qs[j / 4 + l] =
                static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        }
    }
}

void quantize_block_plain(const float* x, Block& y) {
    uint8_t L[kBlockElems];
    uint8_t Laux[16];
    float weights[16];
    float mins[kGroups];
    float scales[kGroups];
    const float q4scale = 15.f;
    float max_scale = 0; // scales are >= 0 since the min is subtracted
    float max_min = 0;
    for (int j = 0; j < kGroups; ++j) {
        for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
        scales[j] =
            ggml::make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
        const float iscale = q4scale / max_scale;
        for (int j = 0; j < kGroups; ++j) y.scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
        y.d = ggml::fp16(max_scale / q4scale);
    } else {
        for (int j = 0; j < kGroups; ++j) y.scales[j] = 0;
        y.d = ggml::fp16(0.f);
    }
    if (max_min > 0) {
        const float iscale = q4scale / max_min;
        for (int j = 0; j < kGroups; ++j) {
            const int l = nearest_int(iscale * mins[j]);
            y.scales[j] = static_cast<uint8_t>(y.scales[j] | (l << 4));
        }
        y.dmin = ggml::fp16(max_min / q4scale);
    } else {
        y.dmin = ggml::fp16(0.f);
    }
    requantize(x, y, L);
    pack(L, y);
}

// Importance-weighted path: weights = importance * sqrt(sigma² + x²), scales/mins via make_qp_quants.
void quantize_block_weighted(const float* x, const float* qw_block, Block& y) {
    uint8_t L[kBlockElems];
    uint8_t Laux[16];
    float mins[kGroups];
    float scales[kGroups];
    float sw[kGroups] = {};
    float weight[16];
    uint8_t Ls[kGroups], Lm[kGroups];
    float sumx2 = 0;
    for (int j = 0; j < kBlockElems; ++j) sumx2 += x[j] * x[j];
    const float sigma2 = sumx2 / kBlockElems;
    for (int j = 0; j < kGroups; ++j) {
        const float* qw = qw_block + 16 * j;
        for (int l = 0; l < 16; ++l) weight[l] = qw[l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
        for (int l = 0; l < 16; ++l) sw[j] += weight[l];
        scales[j] =
            ggml::make_qkx3_quants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
    }
    const float dm = ggml::make_qp_quants(kGroups, 15, scales, Ls, sw);
    const float mm = ggml::make_qp_quants(kGroups, 15, mins, Lm, sw);
    y.d = ggml::fp16(dm);
    y.dmin = ggml::fp16(mm);
    for (int j = 0; j < kGroups; ++j) y.scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
    requantize(x, y, L);
    pack(L, y);
}

} // namespace

void quantize_row(const float* src, void* dst, int64_t n_elems, const float* importance) {
    auto* y = static_cast<Block*>(dst);
    const int64_t nb = n_elems / kBlockElems;
    for (int64_t i = 0; i < nb; ++i) {
        const float* x = src + i * kBlockElems;
        if (importance) {
            quantize_block_weighted(x, importance + i * kBlockElems, y[i]);
        } else {
            quantize_block_plain(x, y[i]);
        }
    }
}

void dequantize_row(const void* src, float* y, int64_t n_elems) {
    const auto* x = static_cast<const Block*>(src);
    const int64_t nb = n_elems / kBlockElems;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = ggml::fp32(x[i].d);
        const float min = ggml::fp32(x[i].dmin);
        const uint8_t* q = x[i].qs;
        int is = 0;
        for (int n = 0; n < kBlockElems; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                for (int half = 0; half < 2; ++half) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * static_cast<float>(sc & 0xF);
                    const float ml = min * static_cast<float>(sc >> 4);
                    for (int l = 0; l < 16; ++l) {
                        *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
                    }
                }
                shift += 2;
            }
            q += 32;
        }
    }
}

} // namespace lowbit::scheme::q2_k
