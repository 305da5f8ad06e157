// SPDX-License-Identifier: MIT
// Q5_1 reference, bit-exact with ggml's quantize_row_q5_1_ref / quantize_row_q5_1_impl / dequantize_row_q5_1.
#include "scheme/ggml_common/ggml_common.h"
#include "scheme/q5_1/q5_1.h"

#include <cfloat>
#include <cmath>
#include <cstring>

namespace lowbit::scheme::q5_1 {
namespace {

void pack(const uint8_t* L, Block& b) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const uint8_t xi0 = L[j];
        const uint8_t xi1 = L[j + 16];
        b.qs[j] = static_cast<uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
        qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
        qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
    }
    std::memcpy(b.qh, &qh, sizeof(qh));
}

void quantize_plain(const float* x, Block* y, int64_t nb) {
    uint8_t L[kBlockElems];
    for (int64_t i = 0; i < nb; ++i, x += kBlockElems) {
        float min = FLT_MAX;
        float max = -FLT_MAX;
        for (int j = 0; j < kBlockElems; ++j) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ggml::fp16(d);
        y[i].m = ggml::fp16(min);
        // ggml casts straight to uint8 here (no clamp to 31), so do we.
        for (int j = 0; j < kBlockElems; ++j) L[j] = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
        pack(L, y[i]);
    }
}

void quantize_weighted(const float* x, Block* y, int64_t n_per_row, const float* qw) {
    float sum_x2 = 0;
    for (int64_t j = 0; j < n_per_row; ++j) sum_x2 += x[j] * x[j];
    const float sigma2 = sum_x2 / static_cast<float>(n_per_row);
    float weight[kBlockElems];
    uint8_t L[kBlockElems], Laux[kBlockElems];
    const int64_t nb = n_per_row / kBlockElems;
    for (int64_t ib = 0; ib < nb; ++ib) {
        const float* xb = x + kBlockElems * ib;
        const float* w = qw + kBlockElems * ib;
        for (int j = 0; j < kBlockElems; ++j) weight[j] = w[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
        float min = 0;
        const float d = ggml::make_qkx3_quants(kBlockElems, 31, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36, false);
        y[ib].d = ggml::fp16(d);
        y[ib].m = ggml::fp16(-min);
        pack(L, y[ib]);
    }
}

} // namespace

void quantize_row(const float* src, void* dst, int64_t n_elems, const float* importance) {
    auto* y = static_cast<Block*>(dst);
    if (importance) {
        quantize_weighted(src, y, n_elems, importance);
    } else {
        quantize_plain(src, y, n_elems / kBlockElems);
    }
}

void dequantize_row(const void* src, float* y, int64_t n_elems) {
    const auto* x = static_cast<const Block*>(src);
    const int64_t nb = n_elems / kBlockElems;
    for (int64_t i = 0; i < nb; ++i, y += kBlockElems) {
        const float d = ggml::fp32(x[i].d);
        const float m = ggml::fp32(x[i].m);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, sizeof(qh));
        for (int j = 0; j < kBlockElems / 2; ++j) {
            const uint8_t xh_0 = static_cast<uint8_t>(((qh >> (j + 0)) << 4) & 0x10);
            const uint8_t xh_1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
            const int x0 = (x[i].qs[j] & 0x0F) | xh_0;
            const int x1 = (x[i].qs[j] >> 4) | xh_1;
            y[j] = static_cast<float>(x0) * d + m;
            y[j + kBlockElems / 2] = static_cast<float>(x1) * d + m;
        }
    }
}

} // namespace lowbit::scheme::q5_1
