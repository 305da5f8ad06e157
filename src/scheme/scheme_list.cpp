// SPDX-License-Identifier: MIT
// The scheme table. One row per storage type; the functions live in the type's own folder.
#include "scheme/scheme_list.h"

#include "scheme/packed4/packed4.h"
#include "scheme/plain/plain.h"
#include "scheme/q2_k/q2_k.h"
#include "scheme/q3_k/q3_k.h"
#include "scheme/q4_0/q4_0.h"
#include "scheme/q4_1/q4_1.h"
#include "scheme/q4_k/q4_k.h"
#include "scheme/q5_0/q5_0.h"
#include "scheme/q5_1/q5_1.h"
#include "scheme/q5_k/q5_k.h"
#include "scheme/q6_k/q6_k.h"
#include "scheme/q8_0/q8_0.h"

#include <array>

namespace lowbit::scheme {
namespace {

constexpr SchemeTraits kSchemes[] = {
    {DType::kF32, plain::dequantize_row_f32, plain::quantize_row_f32, 0.0},
    {DType::kF16, plain::dequantize_row_f16, plain::quantize_row_f16, 1e-3},
    {DType::kBF16, plain::dequantize_row_bf16, plain::quantize_row_bf16, 4e-3},
    // GGUF block types, bit-exact with llama.cpp's quantize_<type> (ggml-quants.c). Bounds: ~1.3x the worst
    // RMSE/sigma measured on 64 Gaussian rows of 4096 (single-block rows vary more).
    {DType::kQ4_0, q4_0::dequantize_row, q4_0::quantize_row, 0.11},
    {DType::kQ4_1, q4_1::dequantize_row, q4_1::quantize_row, 0.10},
    {DType::kQ5_0, q5_0::dequantize_row, q5_0::quantize_row, 0.056},
    {DType::kQ5_1, q5_1::dequantize_row, q5_1::quantize_row, 0.052},
    {DType::kQ8_0, q8_0::dequantize_row, q8_0::quantize_row, 0.0072},
    {DType::kQ2_K, q2_k::dequantize_row, q2_k::quantize_row, 0.38},
    {DType::kQ3_K, q3_k::dequantize_row, q3_k::quantize_row, 0.20},
    {DType::kQ4_K, q4_k::dequantize_row, q4_k::quantize_row, 0.092},
    {DType::kQ5_K, q5_k::dequantize_row, q5_k::quantize_row, 0.047},
    {DType::kQ6_K, q6_k::dequantize_row, q6_k::quantize_row, 0.024},
    // In-memory repacks of HF 4-bit checkpoints (packed4.h); their quantize_row is a plain RTN for the tests.
    // Bounds: Q4_1's plus margin for the integer zero point; NF4/FP4 at block 64 (passing with margin).
    {DType::kI4Z, packed4::dequantize_row_i4z, packed4::quantize_row_i4z, 0.12},
    {DType::kNF4x64, packed4::dequantize_row_nf4x64, packed4::quantize_row_nf4x64, 0.12},
    {DType::kFP4x64, packed4::dequantize_row_fp4x64, packed4::quantize_row_fp4x64, 0.16},
    {DType::kI8Z, packed4::dequantize_row_i8z, packed4::quantize_row_i8z, 0.0072}, // Q8_0's: same step count
};

} // namespace

std::span<const SchemeTraits> all_schemes() {
    return kSchemes;
}

const SchemeTraits* find_scheme(DType dtype) {
    for (const auto& s : kSchemes)
        if (s.dtype == dtype) return &s;
    return nullptr;
}

} // namespace lowbit::scheme
