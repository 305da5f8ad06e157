// SPDX-License-Identifier: MIT
// Hugging Face GPTQ checkpoint layout (AutoGPTQ / GPTQModel / transformers; ANCHORS.md §3.1) for one Linear with
// K = in_features, N = out_features, b bits, n_groups groups:
//   qweight int32 [K*b/32, N]        codes packed along K: row k at bits [b*k, b*k + b) of column n's bit stream
//                                    (LSB first; 3-bit codes straddle words exactly as AutoGPTQ's pack does)
//   qzeros  int32 [n_groups, N*b/32] zero points packed along N the same way; v1 ("gptq") stores zero - 1
//   scales  f16   [n_groups, N]
//   g_idx   int32 [K]                group of each input channel (k / g, or the act-order assignment)
//   W[n, k] = scales[g_idx[k], n] * (q[k, n] - z[g_idx[k], n]).
#pragma once

#include "core/error.h"
#include "scheme/int_group/tensor_record.h"

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace lowbit::scheme::gptq {

// checkpoint_format: v1 = "gptq" (zero - 1 stored), v2 = "gptq_v2" (zero stored as is).
enum class GptqFormat { kV1, kV2 };
const char* format_name(GptqFormat format); // "gptq", "gptq_v2"
// From quantize_config.json's checkpoint_format (empty = legacy v1). kUnsupported for "marlin"/others.
Result<GptqFormat> parse_format(std::string_view checkpoint_format);

// One quantized Linear in unpacked form (nn.Linear orientation of the GPTQ core: rows = N outputs).
struct GptqLinear {
    int bits = 4;
    int64_t n_out = 0, n_in = 0, n_groups = 0; // N, K, groups
    std::vector<int32_t> codes;                // [N, K] in [0, 2^b)
    std::vector<float> scales;                 // [N, n_groups]
    std::vector<int32_t> zeros;                // [N, n_groups] in [0, 2^b)
    std::vector<int32_t> g_idx;                // [K] in [0, n_groups)
};

// kUsage: bits not 2/3/4/8, K*b or N*b not a multiple of 32, sizes of the vectors, values out of range.
Status validate(const GptqLinear& linear);

// Records "qweight", "qzeros", "scales", "g_idx" (suffixes relative to the module prefix). Scales are rounded
// to f16. In v1 a zero of 0 cannot be stored (it wraps to 2^b - 1, as AutoGPTQ's masked pack does); the count of
// such zeros is returned in *n_wrapped_zeros when given (asymmetric only; GPTQModel's v1 caveat).
Result<std::vector<TensorRecord>> pack(const GptqLinear& linear, GptqFormat format, int64_t* n_wrapped_zeros = nullptr);

// The inverse: checks dtypes and shapes of the four records (kBadInput naming the record) and unpacks.
// Scales come back as the f16 values. n_out, n_in, bits must be known from the module's config.
Result<GptqLinear> unpack(std::span<const TensorRecord> records, GptqFormat format, int bits, int64_t n_out,
                          int64_t n_in);

// W [N, K] f32 from the unpacked form (dequantization formula above).
std::vector<float> dequantize(const GptqLinear& linear);

// Bit-stream helpers (exposed for tests): value i of `values` at bits [b*i, b*i + b) of little-endian words.
std::vector<uint32_t> pack_bits(std::span<const uint32_t> values, int bits);
std::vector<uint32_t> unpack_bits(std::span<const uint32_t> words, int bits, int64_t n_values);

} // namespace lowbit::scheme::gptq
