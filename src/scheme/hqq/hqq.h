// SPDX-License-Identifier: MIT
// HQQ storage (mobiusml/dropbox hqq, hqq/core/quantize.py + bitpack.py): affine codes with a float scale and a
// float zero per group, on a grouped 2-D view of the weight, bit-packed by splitting ROWS (not interleaving).
//
// Grouping of a weight with numel elements and group size g (row-major flat order):
//   axis 1: grouped matrix [R = numel/g, C = g]: each row is one group of g consecutive weights
//   axis 0: grouped matrix [R = g, C = numel/g]: each column is one group (weights numel/g apart)
// scale, zero: [R, 1] (axis 1) or [1, C] (axis 0). Code q in [0, 2^nbits - 1]; weight = (q - zero) * scale.
// Packing of the [R, C] code matrix (rows split into 8/nbits parts, part k at the k-th highest bits):
//   8 bit "8bit_u8": [R, C] u8                 4 bit "4bit_u8": [R/2, C] u8, (q[i] << 4) | q[i + R/2]
//   2 bit "2bit_u8": [R/4, C] u8 (shifts 6,4,2,0)   1 bit "1bit_u8": [R/8, C] u8 (shifts 7..0)
//   3 bit "3bit_32": rows padded with zeros to R10 = 10*ceil(R/10); [R10/10, C] i32, part k at shift 27 - 3k.
// Bits per weight: nbits (+ 3-bit padding) + 2 * 16 / g with f16 scale and zero.
#pragma once

#include "core/error.h"
#include "core/tensor.h"
#include "scheme/int_group/tensor_record.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace lowbit::scheme::hqq {

struct HqqParams {
    int nbits = 4;                  // 1, 2, 3, 4 or 8
    int64_t group_size = 64;        // divides numel; the packed dimension (R) must split into 8/nbits parts
    int axis = 1;                   // 1: groups of consecutive weights (HF HqqConfig default); 0: strided groups
    DType meta_dtype = DType::kF16; // scale/zero as stored (hqq casts them to compute_dtype, f16 by default)
};

// Rows/cols of the grouped matrix.
struct GroupedShape {
    int64_t n_rows = 0; // R
    int64_t n_cols = 0; // C
};

// kUsage: nbits not in {1,2,3,4,8}, axis not 0/1, group_size <= 0 or not dividing numel, meta_dtype not
// F16/F32, or a grouped row count that the packing cannot split (4-bit: R even; 2-bit: R % 4; 1-bit: R % 8).
Status validate(const HqqParams& params, const Shape& shape);
GroupedShape grouped_shape(const HqqParams& params, const Shape& shape);
// Groups: R for axis 1, C for axis 0.
inline int64_t n_groups(const HqqParams& p, const GroupedShape& g) {
    return p.axis == 1 ? g.n_rows : g.n_cols;
}
const char* packing_name(int nbits); // "4bit_u8", "3bit_32", ...

struct HqqTensor {
    HqqParams params;
    Shape shape;              // original weight shape
    std::vector<uint8_t> w_q; // packed codes, bytes of the [packed_rows, C] u8 or i32 (3-bit) matrix
    std::vector<float> scale; // [n_groups] (already 1 / s_inv, as hqq stores it)
    std::vector<float> zero;  // [n_groups]
};

// Packs a [R, C] code matrix (row-major, values < 2^nbits) into hqq's layout; unpack returns [R, C].
std::vector<uint8_t> pack(std::span<const uint8_t> q, int nbits, int64_t n_rows, int64_t n_cols);
std::vector<uint8_t> unpack(std::span<const uint8_t> packed, int nbits, int64_t n_rows, int64_t n_cols);
// Shape of the packed W_q tensor: [ceil-rows, C].
Shape packed_shape(int nbits, int64_t n_rows, int64_t n_cols);

// Builds the tensor from codes [R, C] and per-group scale / zero (scale and zero are rounded to meta_dtype,
// so dequantize(from_records(to_records(t))) == dequantize(t)).
Result<HqqTensor> make_tensor(const HqqParams& params, const Shape& shape, std::span<const uint8_t> q,
                              std::vector<float> scale, std::vector<float> zero);

// out[numel] = (q - zero[group]) * scale[group] in the original row-major order.
void dequantize(const HqqTensor& t, float* out);

// hqq's encoded state dict (HQQLinear.state_dict with encoded_state_dict=True) for one layer:
//   W_q, scale, zero; shape (i64 [n_dims]); nbits, group_size, axis (i32 scalars); packing, unpack_view_dtype,
//   compute_dtype (u8 ASCII); view_as_float, quant_scale, quant_zero, offload_meta, encoded_state_dict,
//   stores_quant_config, channel_wise, optimize, round_zero (u8 0/1 scalars).
// `optimize` and `round_zero` record how the values were chosen (the algorithm's settings).
std::vector<TensorRecord> to_records(const HqqTensor& t, bool optimize, bool round_zero);
// Inverse; checks every size against shape/nbits/group_size/axis (kBadInput naming the tensor).
Result<HqqTensor> from_records(std::span<const TensorRecord> records);

} // namespace lowbit::scheme::hqq
