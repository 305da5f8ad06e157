// SPDX-License-Identifier: MIT
// Q4_K reference, bit-exact with ggml's quantize_row_q4_K_ref / quantize_row_q4_K_impl / dequantize_row_q4_K.
#include "scheme/ggml_common/ggml_common.h"
#include "scheme/q4_k/q4_k.h"

#include <algorithm>
#include <cmath>

namespace lowbit::scheme::q4_k {
namespace {

using ggml::nearest_int;
constexpr int kGroups = kBlockElems / 32;

// Levels from the stored scales/mins (groups with a zero scale keep L), then nibble packing.
void finish_block(const float* x, Block& y, uint8_t* L) {
    const float d_all = ggml::fp32(y.d);
    const float m_all = ggml::fp32(y.dmin);
    for (int j = 0; j < kGroups; ++j) {
        uint8_t sc, m;
        ggml::get_scale_min_k4(j, y.scales, &sc, &m);
        const float d = d_all * static_cast<float>(sc);
        if (d == 0.0f) continue;
        const float dm = m_all * static_cast<float>(m);
        for (int ii = 0; ii < 32; ++ii) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(15, l)));
        }
    }
    uint8_t* q = y.qs;
    for (int j = 0; j < kBlockElems; j += 64, q += 32) {
        for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    }
}

void quantize_block_plain(const float* x, Block& y) {
    uint8_t L[kBlockElems];
    uint8_t Laux[32];
    float weights[32];
    float mins[kGroups];
    float scales[kGroups];
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < kGroups; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
        scales[j] =
            ggml::make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < kGroups; ++j) {
        uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
        uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
        ls = std::min<uint8_t>(63, ls);
        lm = std::min<uint8_t>(63, lm);
        ggml::set_scale_min_k4(j, ls, lm, y.scales);
    }
    y.d = ggml::fp16(max_scale / 63.f);
    y.dmin = ggml::fp16(max_min / 63.f);
    finish_block(x, y, L);
}

void quantize_block_weighted(const float* x, const float* qw_block, Block& y) {
    uint8_t L[kBlockElems];
    uint8_t Laux[32];
    uint8_t Ls[kGroups];
    uint8_t Lm[kGroups];
    float weights[32];
    float sw[kGroups];
    float mins[kGroups];
    float scales[kGroups];
    float sum_x2 = 0;
    for (int l = 0; l < kBlockElems; ++l) sum_x2 += x[l] * x[l];
    const float sigma2 = 2 * sum_x2 / kBlockElems;
    const float av_x = std::sqrt(sigma2);
    for (int j = 0; j < kGroups; ++j) {
        if (qw_block) {
            const float* qw = qw_block + 32 * j;
            for (int l = 0; l < 32; ++l) weights[l] = qw[l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
        } else {
            for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
        }
        float sumw = 0;
        for (int l = 0; l < 32; ++l) sumw += weights[l];
        sw[j] = sumw;
        scales[j] =
            ggml::make_qkx3_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
    }
    const float d_block = ggml::make_qp_quants(kGroups, 63, scales, Ls, sw);
    const float m_block = ggml::make_qp_quants(kGroups, 63, mins, Lm, sw);
    for (int j = 0; j < kGroups; ++j) ggml::set_scale_min_k4(j, Ls[j], Lm[j], y.scales);
    y.d = ggml::fp16(d_block);
    y.dmin = ggml::fp16(m_block);
    finish_block(x, y, L);
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
        const uint8_t* q = x[i].qs;
        const float d = ggml::fp32(x[i].d);
        const float min = ggml::fp32(x[i].dmin);
        for (int is = 0; is < kGroups; is += 2, q += 32) {
            uint8_t sc, m;
            ggml::get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * static_cast<float>(sc);
            const float m1 = min * static_cast<float>(m);
            ggml::get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * static_cast<float>(sc);
            const float m2 = min * static_cast<float>(m);
            for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
        }
    }
}

} // namespace lowbit::scheme::q4_k
