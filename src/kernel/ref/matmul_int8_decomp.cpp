// SPDX-License-Identifier: MIT
// LLM.int8() decomposed matmul, scalar reference (see the header for the algorithm).
#include "kernel/ref/matmul_int8_decomp.h"

#include "core/half.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <vector>

namespace lowbit::kernel::ref {

Status matmul_int8_decomp(const float* x, int64_t m, int64_t k, const int8_t* w, const float* scb, int64_t n,
                          float threshold, float* y, Int8DecompStats* stats) {
    if (m <= 0 || k <= 0 || n <= 0 || !x || !w || !scb || !y)
        return make_error(ErrorCode::kUsage, fmt::format("matmul_int8_decomp: bad arguments m={} k={} n={}", m, k, n));
    // 1. Outlier columns of X.
    std::vector<uint8_t> outlier(size_t(k), 0);
    int64_t n_outliers = 0;
    if (threshold > 0.0f) {
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < k; ++j)
                if (std::fabs(x[i * k + j]) >= threshold) outlier[size_t(j)] = 1;
        n_outliers = std::count(outlier.begin(), outlier.end(), uint8_t(1));
    }
    if (stats) stats->n_outlier_cols = n_outliers;
    // 2. Row-wise int8 quantization of X without the outlier columns.
    std::vector<int8_t> xq(static_cast<size_t>(m * k));
    std::vector<float> row_stat(static_cast<size_t>(m));
    std::vector<float> xrow(static_cast<size_t>(k));
    for (int64_t i = 0; i < m; ++i) {
        float amax = 0.0f;
        for (int64_t j = 0; j < k; ++j) {
            xrow[size_t(j)] = outlier[size_t(j)] ? 0.0f : x[i * k + j];
            amax = std::max(amax, std::fabs(xrow[size_t(j)]));
        }
        row_stat[size_t(i)] = amax;
        const float inv = 127.0f / amax;
        for (int64_t j = 0; j < k; ++j)
            xq[size_t(i * k + j)] = amax > 0.0f ? int8_t(std::nearbyint(xrow[size_t(j)] * inv)) : int8_t(0);
    }
    // 3. int32 GEMM, rescale; 4. float part for the outlier columns.
    const float inv_127_sq = 1.0f / (127.0f * 127.0f);
    const float inv_127 = 7.874015718698502e-3f;
    for (int64_t i = 0; i < m; ++i)
        for (int64_t r = 0; r < n; ++r) {
            int32_t acc = 0;
            const int8_t* wr = w + r * k;
            const int8_t* xr = &xq[size_t(i * k)];
            for (int64_t j = 0; j < k; ++j) acc += int32_t(xr[j]) * int32_t(wr[j]);
            float out = float(acc) * (row_stat[size_t(i)] * load_f32(scb, r)) * inv_127_sq;
            if (n_outliers > 0) {
                float fsum = 0.0f;
                for (int64_t j = 0; j < k; ++j)
                    if (outlier[size_t(j)]) fsum += x[i * k + j] * (float(wr[j]) * load_f32(scb, r) * inv_127);
                out += fsum;
            }
            y[i * n + r] = out;
        }
    return ok_status();
}

} // namespace lowbit::kernel::ref
