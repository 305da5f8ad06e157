// SPDX-License-Identifier: MIT
// Repacks of Hugging Face 4- and 8-bit layouts into scheme/packed4 blocks, the form the CPU engine multiplies by
// (kernel rows cpu::qdot_i4z / qdot_i8z / qdot_nf4x64 / qdot_fp4x64): a Linear stays ~5 (8-bit: 9) bits per weight
// in memory instead of a dense f32 copy. Every repack is exact: the packed rows dequantize (scheme row) to the same
// f32 values as the layout's reference dequantization. A layout the blocks cannot hold exactly returns nullopt and a
// reason, and the loader row keeps the dense f32 path for that module:
//   int4 / int8 groups (GPTQ, AWQ, HQQ axis 1, lowbit RTN) into kI4Z / kI8Z: group size a multiple of 32 dividing K,
//     scales and zeros f16 values (true for GPTQ/AWQ/RTN files, and HQQ with its default f16 meta); GPTQ act-order
//     (g_idx not k / g, every group holding K / G columns) is repacked with its columns sorted by group (a stable
//     counting sort) and the order kept in col_perm, which the matmul applies to x (kernel.h, WeightView::col_perm);
//     2/3 bits are not repacked (dense).
//   bitsandbytes NF4/FP4: 2-D, K % 64 == 0, block size a multiple of 64, the file's quant_map equal to the table.
#pragma once

#include "core/dtype.h"
#include "core/tensor.h"
#include "scheme/awq/awq_pack.h"
#include "scheme/gptq/gptq_pack.h"
#include "scheme/hqq/hqq.h"
#include "scheme/int_group/int_group.h"
#include "scheme/nf4/nf4.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lowbit::model::quantized {

// A [n_rows, n_cols] weight as rows of `dtype` blocks.
struct PackedWeight {
    DType dtype = DType::kI4Z;
    int64_t n_rows = 0, n_cols = 0;
    std::vector<uint8_t> bytes;
    std::vector<int32_t> col_perm; // empty, or stored column j = input column col_perm[j] (GPTQ act-order)
};

// Each: the packed weight, or nullopt with *why_not set (a short phrase for the log).
std::optional<PackedWeight> repack_gptq(const scheme::gptq::GptqLinear& l, std::string* why_not);
std::optional<PackedWeight> repack_awq(const scheme::awq::AwqLinear& l, std::string* why_not);
std::optional<PackedWeight> repack_hqq(const scheme::hqq::HqqTensor& t, std::string* why_not);
std::optional<PackedWeight> repack_int_group(const scheme::int_group::IntGroupTensor& t, std::string* why_not);
std::optional<PackedWeight> repack_nf4(const scheme::nf4::Nf4Tensor& t, std::string* why_not);

// The f32 values of a presented 2-D weight: f32 as is, a packed dtype through its scheme row (what ref/ multiplies
// by). Empty when the dtype has no dequantize_row. For tests and tools; [n_rows * n_cols].
std::vector<float> dense_weight(const TensorView& v);

// Counts packed / dense modules of one loader row and logs one line at the end.
struct RepackTally {
    int64_t n_packed = 0, n_dense = 0;
    std::string first_reason; // why the first dense module stayed dense
    void dense(const std::string& module, const std::string& why);
    void log(const char* method) const;
};

} // namespace lowbit::model::quantized
