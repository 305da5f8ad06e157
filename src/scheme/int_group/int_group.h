// SPDX-License-Identifier: MIT
// Integer groups: b-bit codes (b = 2, 3, 4, 8) with one f16 scale (and, asymmetric, one u8 zero) per group of
// g consecutive weights along a row (g = -1: one group per row, "per-channel"). The common target of RTN,
// GPTQ and AWQ; export to GPTQ/AWQ int32 layouts ([K/8, N] etc.) is the writers' job, not this layout's.
//
// Tensor [n_rows, n_cols] (nn.Linear orientation [out, in]):
//   qweight [n_rows, words_per_row] u32: the row's codes as a little-endian bit stream, code j at bits
//           [j*b, j*b + b) of the row (3-bit codes may straddle two words); words_per_row = ceil(n_cols*b/32)
//   scales  [n_rows, n_groups] f16
//   zeros   [n_rows, n_groups] u8 (asymmetric only; symmetric uses the implicit zero 2^(b-1))
//   weight = (q - zero) * scale.
// Bits per weight: b + 16/g (symmetric) or b + 24/g (asymmetric).
#pragma once

#include "core/error.h"
#include "scheme/int_group/tensor_record.h"

#include <cstdint>
#include <span>
#include <vector>

namespace lowbit::scheme::int_group {

struct IntGroupParams {
    int bits = 4;             // 2, 3, 4 or 8
    int64_t group_size = 128; // divides n_cols; -1 = per-channel (one group per row)
    bool symmetric = false;
};

// Bound on RMSE/sigma for N(0,1) rows at g = 128 (registry tests; measured values next to the definition).
double max_rmse(int bits, bool symmetric);

// kUsage: bits not in {2,3,4,8}, group_size not -1 and not in [1, n_cols] dividing n_cols, or empty shape.
Status validate(const IntGroupParams& params, int64_t n_rows, int64_t n_cols);

struct IntGroupTensor {
    IntGroupParams params;
    int64_t n_rows = 0;
    int64_t n_cols = 0;
    std::vector<uint32_t> qweight; // [n_rows, words_per_row()]
    std::vector<uint16_t> scales;  // [n_rows, n_groups()] f16 bits
    std::vector<uint8_t> zeros;    // [n_rows, n_groups()] (asymmetric) or empty

    int64_t group_elems() const { return params.group_size < 0 ? n_cols : params.group_size; }
    int64_t n_groups() const { return n_cols / group_elems(); }
    int64_t words_per_row() const { return (n_cols * params.bits + 31) / 32; }
};

// Writes code q (< 2^bits) at position j of a row's bit stream / reads it back.
void put_code(uint32_t* row_words, int64_t j, int bits, uint32_t q);
uint32_t get_code(const uint32_t* row_words, int64_t j, int bits);

// The reference quantizer for a fixed scale/zero (used by RTN, and by GPTQ/AWQ with their own scales):
//   q = clamp(round_half_even(w / scale) + zero, 0, 2^bits - 1).
uint32_t quantize_value(float w, float scale, float zero, int bits);

// Round-to-nearest with min/max scales (GPTQ's Quantizer.find_params conventions):
//   asymmetric: lo = min(0, min w), hi = max(0, max w); scale = (hi - lo) / (2^b - 1); zero = round(-lo / scale)
//   symmetric:  a = max |w|; scale = 2a / (2^b - 1); zero = 2^(b-1)
//   an all-zero group uses lo = -1, hi = 1. The scale is rounded to f16 before the codes are chosen, so
//   dequantization reproduces exactly what was optimized. Errors: validate(), non-finite weights (kBadInput).
Result<IntGroupTensor> quantize_rtn(const float* w, int64_t n_rows, int64_t n_cols, const IntGroupParams& params);

// out[n_rows * n_cols] = (q - zero) * scale.
void dequantize(const IntGroupTensor& t, float* out);

// Records: qweight (u32 is stored as I32 bytes [n_rows, words]), scales (F16 [n_rows, n_groups]),
// zeros (U8 [n_rows, n_groups], asymmetric only). Parameters travel in the caller's config (bits, group size).
std::vector<TensorRecord> to_records(const IntGroupTensor& t);
Result<IntGroupTensor> from_records(std::span<const TensorRecord> records, const IntGroupParams& params, int64_t n_rows,
                                    int64_t n_cols);

} // namespace lowbit::scheme::int_group
