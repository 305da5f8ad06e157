// SPDX-License-Identifier: MIT
// Fast paths of GGUF quantization (issue #16, `lowbit quantize` speed): row quantizers for Q8_0, Q4_0, Q4_K and
// Q6_K without importance, and the f16 row decode of the input fused with the non-finite check. Each AVX2 row
// quantizer gives the bytes of the scheme's reference quantize_row (scheme/<type>/<type>_ref.cpp, itself ggml's
// _ref) bit for bit: the same float operations in the same order, vectorized across elements of a block (Q8_0,
// Q4_0) or across the sub-blocks of a super-block (Q4_K: its 8 groups of 32 are the 8 lanes of the scale search;
// Q6_K: its 16 groups of 16 are two vectors of 8), compiled without contraction (-ffp-contract=off, no -mfma).
// quant_rows_test.cpp checks each against the reference on random and edge data, bitwise.
// The scalar level has no entry of its own: callers use the scheme's quantize_row (the reference) there.
#pragma once

#include "core/dtype.h"
#include "kernel/cpu/qdot/qdot.h"

#include <cstdint>

namespace lowbit::kernel::cpu::quant {

using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n_elems, const float* importance);

// The row quantizer of `dtype` at exactly `level` for rows quantized without importance, or nullptr (no fast path
// at that level: use the scheme's quantize_row). Does not check that the CPU runs `level` (qdot::supported).
QuantizeRowFn find_quantize_row_plain(DType dtype, qdot::Level level);

// f16 row -> f32 row (exact), and the index of the first element that is Inf or NaN (or n when none): the decode
// and the non-finite check of the quantize path in one pass. `level` picks the code (scalar: half.h's f16_to_f32).
int64_t decode_f16_row_checked(const uint16_t* src, float* dst, int64_t n, qdot::Level level);

// Per-level entries (the AVX2 file; nullptr / unused where not built for this CPU architecture).
QuantizeRowFn find_quantize_row_plain_avx2(DType dtype);
int64_t decode_f16_row_checked_avx2(const uint16_t* src, float* dst, int64_t n);

} // namespace lowbit::kernel::cpu::quant
