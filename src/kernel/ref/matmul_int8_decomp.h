// SPDX-License-Identifier: MIT
// LLM.int8() matmul with outlier decomposition (bitsandbytes int8_mixed_scaled_mm, default backend):
//   outlier columns: every column k of X where some |x[m, k]| >= threshold (threshold <= 0: none)
//   int8 part: X with outlier columns zeroed, row-wise absmax-quantized to int8 (int8_vectorwise_quant),
//              int32 accumulation against the int8 weight, rescaled by rowstat[m] * SCB[n] / 127^2
//   float part: X[:, outliers] times the dequantized weight columns W[:, outliers] (q * SCB / 127), in f32
//   y = int8 part + float part.
// Reference (scalar) implementation; the oracle for faster back ends.
#pragma once

#include "core/error.h"

#include <cstdint>

namespace lowbit::kernel::ref {

struct Int8DecompStats {
    int64_t n_outlier_cols = 0;
};

// y[m, n] = x[m, k] · W[n, k]^T with W = int8 weight [n, k] (row-major) + scb [n].
// Errors (kUsage): non-positive sizes or null pointers.
Status matmul_int8_decomp(const float* x, int64_t m, int64_t k, const int8_t* w, const float* scb, int64_t n,
                          float threshold, float* y, Int8DecompStats* stats = nullptr);

} // namespace lowbit::kernel::ref
