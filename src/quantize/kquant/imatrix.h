// SPDX-License-Identifier: MIT
// llama.cpp importance matrices (imatrix) -> per-column importance, and row-parallel GGUF block quantization.
// An imatrix GGUF (llama-imatrix, tools/imatrix) holds per weight tensor `<name>.in_sum2` ([ne0 * n_mat] f32,
// the summed squared activations of each input column) and `<name>.counts` ([n_mat] f32, tokens seen).
// llama-quantize divides: importance[j*ne0 + i] = in_sum2[j*ne0 + i] / lround(counts[j]) (1 where the count is 0).
// Reading the file is format/'s job; this file holds the arithmetic so lowbit's bytes equal llama.cpp's.
#pragma once

#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace lowbit::quantize::kquant {

// Name suffixes of the two imatrix GGUF tensors of one weight.
inline constexpr std::string_view kInSum2Suffix = ".in_sum2";
inline constexpr std::string_view kCountsSuffix = ".counts";

// importance [in_sum2.size()] from one imatrix entry (common_imatrix_load + load_imatrix in llama.cpp).
// Errors (kBadInput, naming `name`): empty counts, sizes that do not divide, non-finite values (llama-quantize
// refuses those too).
Result<std::vector<float>> importance_from_imatrix(std::string_view name, std::span<const float> in_sum2,
                                                   std::span<const float> counts);

// Quantizes src [n_rows, n_per_row] f32 into dst (n_rows * row bytes of `dtype`) through the scheme table,
// rows in parallel on `pool` (null: ThreadPool::global()). importance: null or [n_per_row], shared by all rows
// (llama.cpp passes one imatrix row per 2-D weight). Bytes do not depend on the thread count.
// Errors: kUnsupported if lowbit cannot produce `dtype`; kUsage if n_per_row is not a multiple of its block.
Status quantize_rows(DType dtype, const float* src, int64_t n_rows, int64_t n_per_row, const float* importance,
                     void* dst, ThreadPool* pool = nullptr);

} // namespace lowbit::quantize::kquant
