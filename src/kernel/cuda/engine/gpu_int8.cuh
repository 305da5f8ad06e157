// SPDX-License-Identifier: MIT
// LLM.int8 on the device (gpu_int8.cu; included by .cu files only).
#pragma once

#include <cstdint>
#include <cuda_runtime.h>

namespace lowbit::kernel::cuda::engine {

// LLM.int8 (bitsandbytes Linear8bitLt; kI8 weights [n_rows, n_cols] int8 with per-row scales scb, w = q·scb/127):
// y[m, n_rows] (= or +=) x · Wᵀ (+ bias) by kernel/ref/matmul_int8_decomp's decomposition, for any m — columns where
// some token has |x| >= threshold (none when threshold <= 0) multiply in f32, the rest with x quantized per token
// row to int8 (amax of the other columns) by dp4a. Scratch: mask [n_cols] (used when m > 8), outl [n_cols + 1] (the
// outlier columns' count and list), xq [m, n_cols], amax [m]. n_cols % 16 == 0.
cudaError_t launch_int8_decomp(const int8_t* w, const float* scb, int64_t n_rows, int64_t n_cols, float threshold,
                               const float* x, int64_t m, const float* bias, float* y, bool accumulate, uint8_t* mask,
                               int32_t* outl, int8_t* xq, float* amax, cudaStream_t stream);

} // namespace lowbit::kernel::cuda::engine
