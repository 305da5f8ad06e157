// SPDX-License-Identifier: MIT
// Q6_K reference, bit-exact with ggml's quantize_row_q6_K_ref / quantize_row_q6_K_impl / dequantize_row_q6_K.
#include "scheme/ggml_common/ggml_common.h"
#include "scheme/q6_k/q6_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lowbit::scheme::q6_k {
namespace {

using ggml::nearest_int;
constexpr int kGroups = kBlockElems / 16;

// qw_block: [256] importance or null (ggml's ref and impl differ only in make_qx_quants' weights).
void quantize_block(const float* x, const float* qw_block, Block& y) {
    int8_t L[kBlockElems];
    float scales[kGroups];
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int ib = 0; ib < kGroups; ++ib) {
        const float* qw = qw_block ? qw_block + 16 * ib : nullptr;
        const float scale = ggml::make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, qw);
        scales[ib] = scale;
        const float abs_scale = std::fabs(scale);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    if (max_abs_scale < ggml::kGroupMaxEps) {
        std::memset(&y, 0, sizeof(Block));
        y.d = ggml::fp16(0.f);
        return;
    }
    const float iscale = -128.f / max_scale;
    y.d = ggml::fp16(1 / iscale);
    for (int ib = 0; ib < kGroups; ++ib) {
        y.scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    }
    const float d_all = ggml::fp32(y.d);
    for (int j = 0; j < kGroups; ++j) {
        const float d = d_all * static_cast<float>(y.scales[j]);
        if (d == 0.0f) continue;
        for (int ii = 0; ii < 16; ++ii) {
            int l = nearest_int(x[16 * j + ii] / d);
            l = std::max(-32, std::min(31, l));
            L[16 * j + ii] = static_cast<int8_t>(l + 32);
        }
    }
    uint8_t* ql = y.ql;
    uint8_t* qh = y.qh;
    for (int j = 0; j < kBlockElems; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; ++l) {
            const uint8_t q1 = L[j + l + 0] & 0xF;
            const uint8_t q2 = L[j + l + 32] & 0xF;
            const uint8_t q3 = L[j + l + 64] & 0xF;
            const uint8_t q4 = L[j + l + 96] & 0xF;
            ql[l + 0] = static_cast<uint8_t>(q1 | (q3 << 4));
            ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
            qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                         ((L[j + l + 96] >> 4) << 6));
        }
    }
}

} // namespace

void quantize_row(const float* src, void* dst, int64_t n_elems, const float* importance) {
    auto* y = static_cast<Block*>(dst);
    const int64_t nb = n_elems / kBlockElems;
    for (int64_t i = 0; i < nb; ++i) {
        quantize_block(src + i * kBlockElems, importance ? importance + i * kBlockElems : nullptr, y[i]);
    }
}

void dequantize_row(const void* src, float* y, int64_t n_elems) {
    const auto* x = static_cast<const Block*>(src);
    const int64_t nb = n_elems / kBlockElems;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = ggml::fp32(x[i].d);
        const uint8_t* ql = x[i].ql;
        const uint8_t* qh = x[i].qh;
        const int8_t* sc = x[i].scales;
        for (int n = 0; n < kBlockElems; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
                y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
                y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
                y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
            }
        }
    }
}

} // namespace lowbit::scheme::q6_k
