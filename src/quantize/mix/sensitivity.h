// SPDX-License-Identifier: MIT
// The cheap sensitivity proxy of mixed precision: the importance-weighted reconstruction error of one tensor
// stored as one type, err = sum_rows sum_j imp[j] * (w[r, j] - Q(w)[r, j])^2, with Q the GGUF block quantizer
// given the same importance (llama.cpp's imatrix: imp[j] = mean squared input of column j). For a linear layer
// y = W x this is the expected squared error of y per token, E||(W - Q(W)) x||^2 with the cross terms of x
// dropped (the diagonal of the input covariance, as the imatrix keeps).
#pragma once

#include "core/dtype.h"
#include "core/error.h"

#include <cstdint>

namespace lowbit::quantize::mix {

// w [n_rows, n_per_row] f32; importance null (all ones) or [n_per_row]. Errors: those of the quantizer
// (kUnsupported type, kUsage row length not a multiple of the block).
Result<double> weighted_error(DType type, const float* w, int64_t n_rows, int64_t n_per_row, const float* importance);

} // namespace lowbit::quantize::mix
