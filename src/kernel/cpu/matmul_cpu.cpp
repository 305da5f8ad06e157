// SPDX-License-Identifier: MIT
// CPU matmul: y[m, N] = x[m, K] · W[N, K]^T (+ bias). See cpu_ops.h for the strategy per case.
#include "core/check.h"
#include "core/half.h"
#include "kernel/cpu/cpu_ops.h"
#include "scheme/scheme_list.h"

#include <algorithm>
#include <cblas.h>
#include <vector>

namespace lowbit::kernel::cpu {
namespace {

// f32 elements of one dequantized tile (rows x K); 4 MiB keeps it in L2/L3 while GEMM reads it.
constexpr int64_t kTileElems = int64_t(1) << 20;

void add_bias(float* y, int64_t m, int64_t n, const float* bias) {
    if (!bias) return;
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) y[i * n + j] += bias[j];
}

void parallel(ThreadPool* pool, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn) {
    if (pool) {
        pool->parallel_for(n, fn, grain);
    } else {
        fn(0, n, 0);
    }
}

// Few rows of x: each thread dequantizes weight rows into its own buffer and dots them with every x row.
void gemv_dequant(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool,
                  scheme::DequantizeRowFn deq) {
    const int64_t k_dim = w.n_cols, n_dim = w.n_rows;
    parallel(pool, n_dim, 16, [&](int64_t begin, int64_t end, int) {
        thread_local std::vector<float> row;
        row.resize(static_cast<size_t>(k_dim));
        for (int64_t n = begin; n < end; ++n) {
            deq(w.row(n), row.data(), k_dim);
            const float b = bias ? bias[n] : 0.0f;
            for (int64_t i = 0; i < m; ++i) y[i * n_dim + n] = dot_f32(x + i * k_dim, row.data(), k_dim) + b;
        }
    });
}

// Many rows of x: dequantize a tile of weight rows (threaded), then one SGEMM per tile.
void gemm_dequant(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool,
                  scheme::DequantizeRowFn deq) {
    const int64_t k_dim = w.n_cols, n_dim = w.n_rows;
    const int64_t tile_rows = std::clamp<int64_t>(kTileElems / std::max<int64_t>(k_dim, 1), 16, n_dim);
    std::vector<float> tile(static_cast<size_t>(tile_rows * k_dim));
    for (int64_t r0 = 0; r0 < n_dim; r0 += tile_rows) {
        const int64_t rows = std::min(tile_rows, n_dim - r0);
        parallel(pool, rows, 4, [&](int64_t begin, int64_t end, int) {
            for (int64_t r = begin; r < end; ++r) deq(w.row(r0 + r), tile.data() + r * k_dim, k_dim);
        });
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(rows), int(k_dim), 1.0f, x, int(k_dim),
                    tile.data(), int(k_dim), 0.0f, y + r0, int(n_dim));
    }
    add_bias(y, m, n_dim, bias);
}

} // namespace

// Branch-free f16 -> f32: place the f16 exponent/mantissa in an f32 and rescale by 2^112 (exact for normals and
// subnormals), then patch Inf/NaN and the sign. Vectorizes with plain SSE2, unlike core/half.h's branchy form.
void dequantize_row_f16_fast(const void* src, float* dst, int64_t n) {
    const auto* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) {
        const uint32_t h = load_u16(s, i); // any alignment (mmap'd data)
        const uint32_t m = (h & 0x7fffu) << 13;
        uint32_t r = f32_bits(f32_from_bits(m) * 0x1p112f);
        r = (h & 0x7c00u) == 0x7c00u ? (m | 0x7f800000u) : r;
        dst[i] = f32_from_bits(r | ((h & 0x8000u) << 16));
    }
}

namespace {

void matmul_with(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool,
                 scheme::DequantizeRowFn deq) {
    if (m < kGemmMinRows) {
        gemv_dequant(x, m, w, bias, y, pool, deq);
    } else {
        gemm_dequant(x, m, w, bias, y, pool, deq);
    }
}

} // namespace

float dot_f32(const float* a, const float* b, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

void matmul_f32(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool) {
    LOWBIT_CHECK(w.dtype == DType::kF32 && w.row_bytes % sizeof(float) == 0);
    if (reinterpret_cast<uintptr_t>(w.data) % alignof(float) != 0) // mmap'd at an odd offset: copy rows, not BLAS
        return matmul_with(x, m, w, bias, y, pool,
                           [](const void* s, float* d, int64_t n) { std::memcpy(d, s, sizeof(float) * size_t(n)); });
    const auto* wf = static_cast<const float*>(w.data);
    const int ld = int(w.row_bytes / sizeof(float));
    if (m == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, int(w.n_rows), int(w.n_cols), 1.0f, wf, ld, x, 1, 0.0f, y, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(w.n_rows), int(w.n_cols), 1.0f, x,
                    int(w.n_cols), wf, ld, 0.0f, y, int(w.n_rows));
    }
    add_bias(y, m, w.n_rows, bias);
}

void matmul_dequant(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool) {
    const auto* sch = scheme::find_scheme(w.dtype);
    LOWBIT_CHECK(sch != nullptr && sch->dequantize_row != nullptr);
    matmul_with(x, m, w, bias, y, pool, sch->dequantize_row);
}

void matmul_f16(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool) {
    LOWBIT_CHECK(w.dtype == DType::kF16);
    static const bool f16c = has_f16c();
    matmul_with(x, m, w, bias, y, pool, f16c ? dequantize_row_f16_f16c : dequantize_row_f16_fast);
}

} // namespace lowbit::kernel::cpu
