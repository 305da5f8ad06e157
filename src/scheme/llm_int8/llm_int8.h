// SPDX-License-Identifier: MIT
// LLM.int8() weights (bitsandbytes Linear8bitLt): row-wise absmax int8.
//   weight [n_rows, n_cols] i8: q = round_half_even(w * (127 / absmax_row))   (int8_vectorwise_quant)
//   SCB    [n_rows] f32: absmax_row;  weight_format u8 scalar 0 ("row" layout)
//   w = q * SCB / 127.  Bits per weight: 8 + 32/n_cols.
// The runtime matmul with outlier decomposition is kernel/ref/matmul_int8_decomp.h.
#pragma once

#include "core/error.h"
#include "scheme/int_group/tensor_record.h"

#include <cstdint>
#include <span>
#include <vector>

namespace lowbit::scheme::llm_int8 {

// RMSE/sigma bound for Gaussian rows of 4096 (registry tests); measured ~0.0095.
inline constexpr double kMaxRmse = 0.011;

struct Int8Tensor {
    int64_t n_rows = 0;
    int64_t n_cols = 0;
    std::vector<int8_t> weight; // [n_rows, n_cols]
    std::vector<float> scb;     // [n_rows] row absmax
};

// One row: absmax and codes exactly as bitsandbytes' int8_vectorwise_quant (an all-zero row gives codes 0).
float quantize_row(const float* w, int64_t n, int8_t* q);

// Errors: empty matrix (kUsage), non-finite weights (kBadInput).
Result<Int8Tensor> quantize(const float* w, int64_t n_rows, int64_t n_cols);
// out[n_rows * n_cols] = q * SCB / 127 (bitsandbytes int8_vectorwise_dequant: q * SCB * (1/127) in f32).
void dequantize(const Int8Tensor& t, float* out);

// Records: weight (I8 [n_rows, n_cols]), SCB (F32 [n_rows]), weight_format (U8 scalar, 0 = row-major).
std::vector<TensorRecord> to_records(const Int8Tensor& t);
// Inverse; n_rows/n_cols come from the weight record; weight_format other than 0 is kUnsupported.
Result<Int8Tensor> from_records(std::span<const TensorRecord> records);

} // namespace lowbit::scheme::llm_int8
