// SPDX-License-Identifier: MIT
// LLM.int8 matmul (kI8 weights + row_scale) on the CPU. Same arithmetic as ref::matmul_int8_decomp, in the same
// order, so results are bit-identical: outlier columns and the row-wise int8 activations are computed once,
// then output rows are split over the pool; the int32 dot products vectorize, and the float part visits only
// the outlier columns (ascending, as ref/ sums them).
#include "core/check.h"
#include "core/half.h"
#include "kernel/cpu/cpu_ops.h"
#include "kernel/ref/matmul_int8_decomp.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace lowbit::kernel::cpu {
namespace {

constexpr int64_t kRowsPerTask = 16;

// The activation side of the decomposition (ref/matmul_int8_decomp.cpp steps 1 and 2).
struct Int8Activations {
    std::vector<int64_t> outliers; // ascending column indices with some |x| >= threshold
    std::vector<int8_t> xq;        // [m, k] row-wise int8 of x with the outlier columns zeroed
    std::vector<float> row_stat;   // [m] absmax of those rows
};

Int8Activations quantize_activations(const float* x, int64_t m, int64_t k, float threshold) {
    Int8Activations a;
    std::vector<uint8_t> is_outlier(size_t(k), 0);
    if (threshold > 0.0f)
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < k; ++j)
                if (std::fabs(x[i * k + j]) >= threshold) is_outlier[size_t(j)] = 1;
    for (int64_t j = 0; j < k; ++j)
        if (is_outlier[size_t(j)]) a.outliers.push_back(j);
    a.xq.resize(size_t(m * k));
    a.row_stat.resize(size_t(m));
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t i = 0; i < m; ++i) {
        float amax = 0.0f;
        for (int64_t j = 0; j < k; ++j) {
            row[size_t(j)] = is_outlier[size_t(j)] ? 0.0f : x[i * k + j];
            amax = std::max(amax, std::fabs(row[size_t(j)]));
        }
        a.row_stat[size_t(i)] = amax;
        const float inv = 127.0f / amax;
        for (int64_t j = 0; j < k; ++j)
            a.xq[size_t(i * k + j)] = amax > 0.0f ? int8_t(std::nearbyint(row[size_t(j)] * inv)) : int8_t(0);
    }
    return a;
}

int32_t dot_i8(const int8_t* a, const int8_t* b, int64_t k) {
    int32_t acc = 0;
    for (int64_t j = 0; j < k; ++j) acc += int32_t(a[j]) * int32_t(b[j]);
    return acc;
}

void matmul_rows(const float* x, int64_t m, const WeightView& w, const Int8Activations& a, int64_t r0, int64_t r1,
                 float* y) {
    const int64_t k = w.n_cols, n = w.n_rows;
    const float inv_127_sq = 1.0f / (127.0f * 127.0f);
    const float inv_127 = 7.874015718698502e-3f; // as ref/
    for (int64_t r = r0; r < r1; ++r) {
        const auto* wr = reinterpret_cast<const int8_t*>(w.row(r));
        const float scb = load_f32(w.row_scale, r); // any alignment (mmap'd SCB)
        for (int64_t i = 0; i < m; ++i) {
            const int32_t acc = dot_i8(&a.xq[size_t(i * k)], wr, k);
            float out = float(acc) * (a.row_stat[size_t(i)] * scb) * inv_127_sq;
            if (!a.outliers.empty()) {
                float fsum = 0.0f;
                for (int64_t j : a.outliers) fsum += x[i * k + j] * (float(wr[j]) * scb * inv_127);
                out += fsum;
            }
            y[i * n + r] = out;
        }
    }
}

void add_bias(const float* bias, int64_t m, int64_t n, float* y) {
    if (bias)
        for (int64_t i = 0; i < m; ++i)
            for (int64_t r = 0; r < n; ++r) y[i * n + r] += bias[r];
}

} // namespace

void matmul_llm_int8(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool) {
    LOWBIT_CHECK(w.dtype == DType::kI8 && w.row_scale != nullptr);
    const Int8Activations a = quantize_activations(x, m, w.n_cols, w.outlier_threshold);
    const int64_t n_tasks = (w.n_rows + kRowsPerTask - 1) / kRowsPerTask;
    auto run = [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t)
            matmul_rows(x, m, w, a, t * kRowsPerTask, std::min(w.n_rows, (t + 1) * kRowsPerTask), y);
    };
    if (pool && n_tasks > 1) {
        pool->parallel_for(n_tasks, run);
    } else {
        run(0, n_tasks, 0);
    }
    add_bias(bias, m, w.n_rows, y);
}

void matmul_llm_int8_ref(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool*) {
    LOWBIT_CHECK(w.dtype == DType::kI8 && w.row_scale != nullptr);
    const Status s = ref::matmul_int8_decomp(x, m, w.n_cols, static_cast<const int8_t*>(w.data), w.row_scale, w.n_rows,
                                             w.outlier_threshold, y, nullptr);
    LOWBIT_CHECK(s.ok());
    add_bias(bias, m, w.n_rows, y);
}

} // namespace lowbit::kernel::cpu
