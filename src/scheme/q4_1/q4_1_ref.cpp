// SPDX-License-Identifier: MIT
// Q4_1 reference, bit-exact with ggml's quantize_row_q4_1_ref / quantize_row_q4_1_impl / dequantize_row_q4_1.
#include "scheme/ggml_common/ggml_common.h"
#include "scheme/q4_1/q4_1.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

namespace lowbit::scheme::q4_1 {
namespace {

void quantize_plain(const float* x, Block* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kBlockElems) {
        float min = FLT_MAX;
        float max = -FLT_MAX;
        for (int j = 0; j < kBlockElems; ++j) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ggml::fp16(d);
        y[i].m = ggml::fp16(min);
        for (int j = 0; j < kBlockElems / 2; ++j) {
            const float x0 = (x[j] - min) * id;
            const float x1 = (x[kBlockElems / 2 + j] - min) * id;
            const uint8_t xi0 = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x0 + 0.5f))));
            const uint8_t xi1 = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x1 + 0.5f))));
            y[i].qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
        }
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
        const float d = ggml::make_qkx3_quants(kBlockElems, 15, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36, false);
        y[ib].d = ggml::fp16(d);
        y[ib].m = ggml::fp16(-min);
        for (int j = 0; j < 16; ++j) y[ib].qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
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
        for (int j = 0; j < kBlockElems / 2; ++j) {
            y[j] = static_cast<float>(x[i].qs[j] & 0x0F) * d + m;
            y[j + kBlockElems / 2] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
        }
    }
}

} // namespace lowbit::scheme::q4_1
