// SPDX-License-Identifier: MIT
// LLM.int8 matmul (kI8 weights + row_scale) on the CPU: the reference decomposition, run on slices of output
// rows in parallel. Outlier columns and activation row statistics depend on x only, so every slice computes
// exactly what the whole call would: results are bit-identical to ref::matmul_int8_decomp.
#include "core/check.h"
#include "kernel/cpu/cpu_ops.h"
#include "kernel/ref/matmul_int8_decomp.h"

#include <algorithm>
#include <vector>

namespace lowbit::kernel::cpu {
namespace {

// Output rows per task: enough that the per-slice outlier scan and x quantization (m * k) stay small next to
// the slice's m * k * rows multiply-adds.
constexpr int64_t kRowsPerTask = 64;

void matmul_rows(const float* x, int64_t m, const WeightView& w, int64_t r0, int64_t r1, float* y) {
    const int64_t n = r1 - r0, k = w.n_cols;
    std::vector<float> part(size_t(m * n));
    const auto* q = reinterpret_cast<const int8_t*>(w.row(r0));
    const Status s =
        ref::matmul_int8_decomp(x, m, k, q, w.row_scale + r0, n, w.outlier_threshold, part.data(), nullptr);
    LOWBIT_CHECK(s.ok()); // sizes and pointers are checked when the weights are bound
    for (int64_t i = 0; i < m; ++i) std::copy_n(part.data() + i * n, n, y + i * w.n_rows + r0);
}

} // namespace

void matmul_llm_int8(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool) {
    LOWBIT_CHECK(w.dtype == DType::kI8 && w.row_scale != nullptr);
    const int64_t n_tasks = (w.n_rows + kRowsPerTask - 1) / kRowsPerTask;
    auto run = [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t)
            matmul_rows(x, m, w, t * kRowsPerTask, std::min(w.n_rows, (t + 1) * kRowsPerTask), y);
    };
    if (pool && n_tasks > 1) {
        pool->parallel_for(n_tasks, run);
    } else {
        run(0, n_tasks, 0);
    }
    if (bias)
        for (int64_t i = 0; i < m; ++i)
            for (int64_t r = 0; r < w.n_rows; ++r) y[i * w.n_rows + r] += bias[r];
}

void matmul_llm_int8_ref(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool*) {
    LOWBIT_CHECK(w.dtype == DType::kI8 && w.row_scale != nullptr);
    const Status s = ref::matmul_int8_decomp(x, m, w.n_cols, static_cast<const int8_t*>(w.data), w.row_scale, w.n_rows,
                                             w.outlier_threshold, y, nullptr);
    LOWBIT_CHECK(s.ok());
    if (bias)
        for (int64_t i = 0; i < m; ++i)
            for (int64_t r = 0; r < w.n_rows; ++r) y[i * w.n_rows + r] += bias[r];
}

} // namespace lowbit::kernel::cpu
