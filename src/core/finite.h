// SPDX-License-Identifier: MIT
// The one non-finite-weight check every quantization method shares (issue #15): NaN/Inf weights are refused
// with kBadInput naming the tensor and the first bad index, never written as garbage nor cast to an integer.
#pragma once

#include "core/error.h"

#include <cstdint>
#include <string_view>

namespace lowbit {

// Index of the first NaN/Inf in x[0, n), or n when all are finite.
int64_t first_non_finite(const float* x, int64_t n);

// The error for element `index` (value `v`) of tensor `tensor` ("" when the caller adds the name), with its row
// when n_cols > 0: kBadInput "tensor 'T': weight element I (row R) is nan; quantization needs finite weights".
Error non_finite_error(std::string_view tensor, int64_t index, int64_t n_cols, float v);

// ok, or non_finite_error for the first NaN/Inf of w[0, n).
Status check_finite_weights(const float* w, int64_t n, int64_t n_cols, std::string_view tensor);

} // namespace lowbit
