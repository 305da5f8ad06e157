// SPDX-License-Identifier: MIT
// Q8_0 reference quantize/dequantize, bit-exact with ggml's quantize_row_q8_0_ref / dequantize_row_q8_0.
#include "scheme/ggml_common/ggml_common.h"
#include "scheme/q8_0/q8_0.h"

#include <algorithm>
#include <cmath>

namespace lowbit::scheme::q8_0 {

void quantize_row(const float* x, void* dst, int64_t n_elems, const float*) {
    auto* y = static_cast<Block*>(dst);
    const int64_t nb = n_elems / kBlockElems;
    for (int64_t i = 0; i < nb; ++i, x += kBlockElems) {
        float amax = 0.0f;
        for (int j = 0; j < kBlockElems; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ggml::fp16(d);
        for (int j = 0; j < kBlockElems; ++j) y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
    }
}

void dequantize_row(const void* src, float* y, int64_t n_elems) {
    const auto* x = static_cast<const Block*>(src);
    const int64_t nb = n_elems / kBlockElems;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = ggml::fp32(x[i].d);
        for (int j = 0; j < kBlockElems; ++j) *y++ = static_cast<float>(x[i].qs[j]) * d;
    }
}

} // namespace lowbit::scheme::q8_0
