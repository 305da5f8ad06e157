// SPDX-License-Identifier: MIT
// CPU matmul on packed GGUF weights: y[m, N] = x[m, K] · W[N, K]^T (+ bias), with qdot's integer dot products.
// x is quantized once per call (Q8 / Q8K blocks; F16/BF16 keep it f32), then chunks of weight rows are claimed by
// the pool's threads. Each thread walks its rows in tiles of kRowTile; for every tile, activation rows pass kMaxX at a
// time, so a weight block is decoded once per kMaxX tokens and the tile stays in L2 while all of x streams by.
#include "core/check.h"
#include "kernel/cpu/cpu_ops.h"
#include "kernel/cpu/qdot/qdot.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace lowbit::kernel::cpu {
namespace {

constexpr int64_t kRowTile = 16; // weight rows per tile (16 rows of K = 4096 at 4.5 bpw: 37 KiB)
constexpr int64_t kChunksPerThread = 4;

// The activation rows in the dot's layout: quantized into `buf`, or x itself for f32 dots.
const uint8_t* prepare_act(const float* x, int64_t m, int64_t k, qdot::ActKind kind, qdot::Level level,
                           std::vector<uint8_t>& buf, ThreadPool* pool) {
    const qdot::QuantizeQ8KFn quantize_q8k = qdot::find_quantize_q8k(level);
    if (kind == qdot::ActKind::kF32) return reinterpret_cast<const uint8_t*>(x);
    const int64_t stride = qdot::act_row_bytes(kind, k);
    buf.resize(size_t(m * stride));
    auto quantize = [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) {
            if (kind == qdot::ActKind::kQ8) {
                qdot::quantize_row_q8(x + i * k, reinterpret_cast<qdot::BlockQ8*>(buf.data() + i * stride), k);
            } else {
                quantize_q8k(x + i * k, reinterpret_cast<qdot::BlockQ8K*>(buf.data() + i * stride), k);
            }
        }
    };
    if (pool && m >= 8) {
        pool->parallel_for(m, quantize, 4);
    } else {
        quantize(0, m, 0);
    }
    return buf.data();
}

// Output rows [begin, end) of every activation row.
// With a rows dot, kRows weight rows per call (the same bits per row as the single-row dot).
void rows_range(qdot::DotFn dot, qdot::DotRowsFn dot_rows, const uint8_t* act, int64_t act_stride, int64_t m,
                const WeightView& w, const float* bias, float* y, int64_t begin, int64_t end) {
    const int64_t n_dim = w.n_rows;
    for (int64_t r0 = begin; r0 < end; r0 += kRowTile) {
        const int64_t r1 = std::min(end, r0 + kRowTile);
        for (int64_t i0 = 0; i0 < m; i0 += qdot::kMaxX) {
            const int n_x = int(std::min<int64_t>(qdot::kMaxX, m - i0));
            int64_t r = r0;
            if (dot_rows)
                for (; r + qdot::kRows <= r1; r += qdot::kRows)
                    dot_rows(w.n_cols, w.row(r), int64_t(w.row_bytes), act + i0 * act_stride, act_stride, n_x,
                             y + i0 * n_dim + r, n_dim);
            for (; r < r1; ++r)
                dot(w.n_cols, w.row(r), act + i0 * act_stride, act_stride, n_x, y + i0 * n_dim + r, n_dim);
        }
        if (!bias) continue;
        for (int64_t i = 0; i < m; ++i)
            for (int64_t r = r0; r < r1; ++r) y[i * n_dim + r] += bias[r];
    }
}

// Up to this many activation rows the integer dots run for every dtype: a decode step of up to 32 sequences (or a
// short prompt chunk) decodes each weight block once per 16 rows instead of dequantizing whole weight matrices to
// f32 for OpenBLAS. kernel_bench (2-core EPYC, shared, 2 threads, 2048x2048; new = qdot, old = dequantize+BLAS),
// m = 16 / 32 / 64: Q4_K 2.7 / 1.5 / 1.35x, Q4_0 3.0 / 1.7 / 0.7x, Q8_0 2.1 / 1.1 / 1.2x, Q6_K 24 / 11 / 2.6x.
constexpr int64_t kQdotMaxRows = 32;

// Activation rows from which dequantize + OpenBLAS beats the integer dots (prefill). kernel_bench, m = 128, AVX2
// (2-core EPYC, shared): the dots won only where dequantizing is expensive (Q6_K, Q2_K: 1.3-1.7x); for the rest
// SGEMM on dequantized tiles was 1.0-1.8x faster single-threaded (Q4_K/Q5_K/F16/BF16 the most).
// Q4_0 / Q8_0 with the 8-row dots (AVX2): 1.5-3x faster than dequantize + SGEMM at m = 64 and 128 for Q4_0, level
// to 1.3x for Q8_0 (kernel_bench, same machine), and prefill then gives the decode path's bits.
// Q4_K: with the dots prefetching the next row, 1.1-1.45x faster than dequantize + SGEMM at m = 64 and 128
// (kernel_bench, 2048x2048 and 5632x2048). F16 stays on SGEMM (2x faster there).
// But the integer prefill rounds the prompt's activations to 8 bits where SGEMM keeps f32: the reference model's
// perplexity moves +0.13-0.19 % for Q8_0/Q4_0/Q4_K_M (docs/bench/cpu-vs-llamacpp-2026-12-07-cpuk.txt), beyond the
// 0.1 % the CPU engine issue allows and away from the CUDA engine's f16 prefill (within 0.06 % today). So it is
// opt-in for Q4_0/Q8_0/Q4_K: LOWBIT_INT_PREFILL=1 (Q6_K/Q2_K keep the integer prefill they had).
bool int_prefill_requested() {
    static const bool on = [] {
        const char* e = std::getenv("LOWBIT_INT_PREFILL");
        return e && std::string(e) == "1";
    }();
    return on;
}

int64_t blas_min_rows(DType dtype) {
    if (dtype == DType::kQ6_K || dtype == DType::kQ2_K) return INT64_MAX;
    if (!int_prefill_requested()) return kQdotMaxRows + 1;
    if (dtype == DType::kQ4_K) return INT64_MAX;
    if ((dtype == DType::kQ4_0 || dtype == DType::kQ8_0) &&
        qdot::find_dot_rows(dtype, qdot::best_dot_level(dtype, qdot::active_level())))
        return INT64_MAX;
    return kQdotMaxRows + 1;
}

} // namespace

bool matmul_qdot_at(qdot::Level level, const float* x, int64_t m, const WeightView& w, const float* bias, float* y,
                    ThreadPool* pool) {
    qdot::ActKind kind;
    const qdot::Level at = qdot::best_dot_level(w.dtype, level); // the level both dots come from
    const qdot::DotFn dot = qdot::act_kind(w.dtype, &kind) ? qdot::find_dot(w.dtype, at) : nullptr;
    if (!dot) return false;
    const qdot::DotRowsFn dot_rows = qdot::find_dot_rows(w.dtype, at);
    thread_local std::vector<uint8_t> buf;
    const uint8_t* act = prepare_act(x, m, w.n_cols, kind, at, buf, pool);
    const int64_t stride = qdot::act_row_bytes(kind, w.n_cols);
    auto run = [&](int64_t begin, int64_t end, int) {
        rows_range(dot, dot_rows, act, stride, m, w, bias, y, begin, end);
    };
    if (pool) {
        // About kChunksPerThread chunks per thread, claimed as threads come free (a preempted thread's share is
        // taken by the others); whole tiles, so the split never changes a row's result.
        const int64_t per =
            (w.n_rows + kChunksPerThread * pool->n_threads() - 1) / (kChunksPerThread * pool->n_threads());
        pool->parallel_for_tiles(w.n_rows, run, (per + kRowTile - 1) / kRowTile * kRowTile);
    } else {
        run(0, w.n_rows, 0);
    }
    return true;
}

void matmul_qdot(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool) {
    if (m < blas_min_rows(w.dtype) && matmul_qdot_at(qdot::active_level(), x, m, w, bias, y, pool)) return;
    if (w.dtype == DType::kF16) return matmul_f16(x, m, w, bias, y, pool);
    matmul_dequant(x, m, w, bias, y, pool);
}

} // namespace lowbit::kernel::cpu
