// SPDX-License-Identifier: MIT
// Q3_K reference, bit-exact with ggml's quantize_row_q3_K_ref / quantize_row_q3_K_impl / dequantize_row_q3_K.
#include "scheme/ggml_common/ggml_common.h"
#include "scheme/q3_k/q3_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lowbit::scheme::q3_k {
namespace {

using ggml::nearest_int;
constexpr int kGroups = kBlockElems / 16;

// Stores the 6-bit value l (0..63) of group j.
void set_scale(uint8_t* scales, int j, int l) {
    if (j < 8) {
        scales[j] = static_cast<uint8_t>(l & 0xF);
    } else {
        scales[j - 8] = static_cast<uint8_t>(scales[j - 8] | ((l & 0xF) << 4));
    }
    l >>= 4;
    scales[j % 4 + 8] = static_cast<uint8_t>(scales[j % 4 + 8] | (l << (2 * (j / 4))));
}

// The signed scale of group j (stored value - 32).
int8_t get_scale(const uint8_t* scales, int j) {
    int8_t sc = static_cast<int8_t>(j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4);
    sc = static_cast<int8_t>((sc | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
    return sc;
}

// Levels from the stored scales, then hmask + 2-bit packing (groups with a zero scale keep L).
void finish_block(const float* x, Block& y, int8_t* L) {
    const float d_all = ggml::fp32(y.d);
    for (int j = 0; j < kGroups; ++j) {
        const float d = d_all * static_cast<float>(get_scale(y.scales, j));
        if (d == 0.0f) continue;
        for (int ii = 0; ii < 16; ++ii) {
            int l = nearest_int(x[16 * j + ii] / d);
            l = std::max(-4, std::min(3, l));
            L[16 * j + ii] = static_cast<int8_t>(l + 4);
        }
    }
    std::memset(y.hmask, 0, sizeof(y.hmask));
    int m = 0;
    uint8_t hm = 1;
    for (int j = 0; j < kBlockElems; ++j) {
        if (L[j] > 3) {
            y.hmask[m] |= hm;
            L[j] = static_cast<int8_t>(L[j] - 4);
        }
        if (++m == kBlockElems / 8) {
            m = 0;
            hm = static_cast<uint8_t>(hm << 1);
        }
    }
    for (int j = 0; j < kBlockElems; j += 128) {
        for (int l = 0; l < 32; ++l) {
            y.qs[j / 4 + l] =
                static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        }
    }
}

void quantize_block_plain(const float* x, Block& y) {
    int8_t L[kBlockElems];
    float scales[kGroups];
    float max_scale = 0;
    float amax = 0;
    for (int j = 0; j < kGroups; ++j) {
        scales[j] = ggml::make_q3_quants(16, 4, x + 16 * j, L + 16 * j, true);
        const float scale = std::fabs(scales[j]);
        if (scale > amax) {
            amax = scale;
            max_scale = scales[j];
        }
    }
    std::memset(y.scales, 0, sizeof(y.scales));
    if (max_scale != 0.0f) {
        const float iscale = -32.f / max_scale;
        for (int j = 0; j < kGroups; ++j) {
            int8_t l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
            l = static_cast<int8_t>(std::max(-32, std::min(31, static_cast<int>(l))) + 32);
            set_scale(y.scales, j, l);
        }
        y.d = ggml::fp16(1 / iscale);
    } else {
        y.d = ggml::fp16(0.f);
    }
    finish_block(x, y, L);
}

void quantize_block_weighted(const float* x, const float* qw_block, Block& y) {
    int8_t L[kBlockElems];
    float scales[kGroups];
    float weight[16];
    float sw[kGroups];
    int8_t Ls[kGroups];
    float sumx2 = 0;
    for (int j = 0; j < kBlockElems; ++j) sumx2 += x[j] * x[j];
    const float sigma2 = 2 * sumx2 / kBlockElems;
    for (int j = 0; j < kGroups; ++j) {
        if (qw_block) {
            const float* qw = qw_block + 16 * j;
            for (int l = 0; l < 16; ++l) weight[l] = qw[l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
        } else {
            for (int l = 0; l < 16; ++l) weight[l] = x[16 * j + l] * x[16 * j + l];
        }
        float sumw = 0;
        for (int l = 0; l < 16; ++l) sumw += weight[l];
        sw[j] = sumw;
        scales[j] = ggml::make_qx_quants(16, 4, x + 16 * j, L + 16 * j, 1, weight);
    }
    std::memset(y.scales, 0, sizeof(y.scales));
    const float d_block = ggml::make_qx_quants(kGroups, 32, scales, Ls, 1, sw);
    for (int j = 0; j < kGroups; ++j) set_scale(y.scales, j, Ls[j]);
    y.d = ggml::fp16(d_block);
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
        const float d_all = ggml::fp32(x[i].d);
        const uint8_t* q = x[i].qs;
        const uint8_t* hm = x[i].hmask;
        int8_t scales[kGroups];
        for (int j = 0; j < kGroups; ++j) scales[j] = get_scale(x[i].scales, j);
        uint8_t m = 1;
        int is = 0;
        for (int n = 0; n < kBlockElems; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                for (int half = 0; half < 2; ++half) {
                    const float dl = d_all * static_cast<float>(scales[is++]);
                    for (int l = 0; l < 16; ++l) {
                        const int h = 16 * half + l;
                        const int qv = ((q[h] >> shift) & 3) - ((hm[h] & m) ? 0 : 4);
                        *y++ = dl * static_cast<float>(qv);
                    }
                }
                shift += 2;
                m = static_cast<uint8_t>(m << 1);
            }
            q += 32;
        }
    }
}

} // namespace lowbit::scheme::q3_k
