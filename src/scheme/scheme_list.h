// SPDX-License-Identifier: MIT
// The scheme table (ggml's type_traits[], in one place): for every storage type that is a plain row of
// blocks (f32/f16/bf16 and the GGUF block types), how to quantize a row from f32 and dequantize it back.
// From a row here, format/ knows sizes (via DType), kernel/ falls back to "dequantize + f32 GEMM", the
// CLI lists the type, and the registry-driven tests cover it.
// Multi-tensor schemes with parameters (NF4/FP4 + absmax, HQQ, GPTQ/AWQ int groups) live in their own
// folders with their own structs; they are not rows of this table.
#pragma once

#include "core/dtype.h"

#include <cstdint>
#include <span>

namespace lowbit::scheme {

// dst[0..n_elems) = decoded src row. n_elems is a multiple of the block size.
using DequantizeRowFn = void (*)(const void* src, float* dst, int64_t n_elems);
// Encodes one row of n_elems floats into blocks at dst. `importance` is null or [n_elems] per-column weights
// (llama.cpp's imatrix, Σx² per input column) that weight the squared error in the scale search.
using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n_elems, const float* importance);

struct SchemeTraits {
    DType dtype;
    DequantizeRowFn dequantize_row;
    QuantizeRowFn quantize_row; // null if lowbit cannot produce this type
    double max_rmse;            // bound on RMSE/σ for Gaussian rows, used by the registry tests
};

// All rows, in DType order.
std::span<const SchemeTraits> all_schemes();
// nullptr when the type has no row (e.g. IQ types not implemented yet).
const SchemeTraits* find_scheme(DType dtype);

} // namespace lowbit::scheme
