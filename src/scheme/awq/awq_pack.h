// SPDX-License-Identifier: MIT
// AutoAWQ "GEMM" checkpoint layout (WQLinear_GEMM; HF quant_method "awq", version "gemm"; ANCHORS.md §3.2) for one
// Linear with K = in_features, N = out_features, 4 bits, group size g (K/g groups):
//   qweight int32 [K, N/8]    codes packed along N: nibble i (bits 4i..4i+3) of word c holds output column
//                             8c + kAwqOrder[i], kAwqOrder = [0, 2, 4, 6, 1, 3, 5, 7] (AutoAWQ gemm.py order_map)
//   qzeros  int32 [K/g, N/8]  zero points, same interleave; stores the actual zero (no -1, unlike GPTQ v1)
//   scales  f16   [K/g, N]
//   W[n, k] = scales[k/g, n] * (q[k, n] - z[k/g, n]).
#pragma once

#include "core/error.h"
#include "scheme/int_group/tensor_record.h"

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace lowbit::scheme::awq {

// Output column (within a word's 8) stored in nibble i; unpacking uses the inverse [0, 4, 1, 5, 2, 6, 3, 7].
inline constexpr std::array<int, 8> kAwqOrder = {0, 2, 4, 6, 1, 3, 5, 7};
inline constexpr std::array<int, 8> kAwqReverseOrder = {0, 4, 1, 5, 2, 6, 3, 7};

// One quantized Linear in unpacked form (nn.Linear orientation: rows = N outputs).
struct AwqLinear {
    int bits = 4;
    int64_t n_out = 0, n_in = 0, group_size = 128; // N, K, g (g divides K; -1 = one group of K, as AutoAWQ)
    std::vector<uint8_t> codes;                    // [N, K] in [0, 2^b)
    std::vector<float> scales;                     // [N, K/g]
    std::vector<int32_t> zeros;                    // [N, K/g] in [0, 2^b)
};

// kUnsupported: bits other than 4 (AutoAWQ GEMM packs 4-bit only). kUsage: N not a multiple of 8, g not dividing K,
// vector sizes not matching the shape, codes/zeros out of range.
Status validate(const AwqLinear& linear);

// Records "qweight", "qzeros", "scales" (suffixes relative to the module prefix). Scales are rounded to f16.
Result<std::vector<TensorRecord>> pack_gemm(const AwqLinear& linear);

// The inverse: checks dtypes and shapes of the three records (kBadInput naming the record and both shapes) and
// unpacks. Scales come back as the f16 values. bits, group_size, n_out, n_in come from the config and the model.
Result<AwqLinear> unpack_gemm(std::span<const TensorRecord> records, int bits, int64_t group_size, int64_t n_out,
                              int64_t n_in);

// W [N, K] f32: W[n, k] = s * (q - z) with the group's scale and zero.
std::vector<float> dequantize(const AwqLinear& linear);

// One packed word from 8 consecutive output columns' codes (exposed for tests): nibble i <- values[kAwqOrder[i]].
uint32_t pack_word(std::span<const uint32_t, 8> values);

} // namespace lowbit::scheme::awq
