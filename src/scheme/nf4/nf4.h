// SPDX-License-Identifier: MIT
// bitsandbytes 4-bit blockwise schemes NF4 and FP4 (same layout, two code tables), with optional double
// quantization of the per-block absmax. Bit-exact with bitsandbytes' default (torch) backend of
// quantize_4bit / quantize_blockwise for f32 input (see nf4_ref.cpp for the exact rules).
//
// Layout of n = numel weights, block size B (32..4096, power of 2; 64 default), n_blocks = ceil(n / B):
//   packed [ceil(n/2)] u8: byte i = (q[2i] << 4) | q[2i+1]   (FIRST element in the HIGH nibble; odd n pads 0)
//   double_quant off: absmax [n_blocks] f32
//   double_quant on (default): offset = mean(absmax) (f32);
//       absmax_q [n_blocks] u8 = nearest code of the signed 8-bit dynamic map to (absmax - offset)/nested_absmax
//       nested_absmax [ceil(n_blocks/256)] f32 = max |absmax - offset| per 256 blocks
//       dequant absmax = nested_code[absmax_q] * nested_absmax + offset
//   weight = code[q] * absmax.  Bits per weight: 4 + 32/B (plain) or 4 + 8/B + 32/(256 B) (double quant).
// Serialized (transformers/bitsandbytes Linear4bit state dict): see to_records().
#pragma once

#include "core/error.h"
#include "core/tensor.h"
#include "scheme/int_group/tensor_record.h"

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace lowbit::scheme::nf4 {

enum class QuantType : uint8_t { kNf4, kFp4 };
const char* quant_type_name(QuantType t); // "nf4" | "fp4"

inline constexpr int64_t kNestedBlockSize = 256; // bitsandbytes fixes the double-quant block at 256

struct Nf4Params {
    QuantType quant_type = QuantType::kNf4;
    int64_t block_size = 64;
    bool double_quant = true;
    std::string torch_dtype = "float16"; // original dtype recorded in the quant state JSON ("dtype")
};
// kUsage when block_size is not a power of two in [32, 4096] or torch_dtype is not float16/bfloat16/float32.
Status validate(const Nf4Params& params);

// The 16-entry code table (bitsandbytes get_4bit_type), f32.
const std::array<float, 16>& code_table(QuantType t);
// bitsandbytes create_dynamic_map(signed=True): 256 sorted f32 values in [-0.99297, 1].
const std::array<float, 256>& dynamic_map_signed();

struct Nf4Tensor {
    Nf4Params params;
    Shape shape;                          // the original weight shape (e.g. [n_rows, n_cols])
    std::vector<uint8_t> packed;          // [ceil(n/2)] two codes per byte, high nibble first
    std::vector<float> absmax;            // [n_blocks] f32; empty when double_quant
    std::vector<uint8_t> absmax_q;        // [n_blocks] u8;  double_quant only
    std::vector<float> nested_absmax;     // [ceil(n_blocks/256)] f32; double_quant only
    float offset = 0.0f;                  // double_quant only
    std::array<float, 16> code{};         // quant_map as stored (dequant uses it)
    std::array<float, 256> nested_code{}; // nested_quant_map as stored; double_quant only

    int64_t n_elems() const { return shape.n_elems(); }
    int64_t n_blocks() const { return (n_elems() + params.block_size - 1) / params.block_size; }
};

// Quantizes `w` ([shape.n_elems()] f32, row-major). Errors: invalid params (kUsage), empty shape or
// non-finite input (kBadInput).
Result<Nf4Tensor> quantize(const float* w, const Shape& shape, const Nf4Params& params);

// The per-block absmax as dequantization sees it ([n_blocks] f32; undoes double quant).
std::vector<float> block_absmax(const Nf4Tensor& t);
// out[shape.n_elems()] = code[q] * absmax[block].
void dequantize(const Nf4Tensor& t, float* out);

// State-dict records of one Linear4bit, suffixes relative to the module prefix:
//   weight [ceil(n/2), 1] u8; weight.absmax [n_blocks] (f32, or u8 with double quant); weight.quant_map [16] f32;
//   weight.nested_absmax [n_nested] f32, weight.nested_quant_map [256] f32 (double quant only);
//   weight.quant_state.bitsandbytes__<nf4|fp4> [len] u8 = UTF-8 JSON {quant_type, blocksize, dtype, shape,
//   nested_blocksize, nested_dtype, nested_offset} exactly as bitsandbytes' json.dumps writes it.
std::vector<TensorRecord> to_records(const Nf4Tensor& t);
// Inverse of to_records; validates the JSON and every size against it (kBadInput with the tensor name).
Result<Nf4Tensor> from_records(std::span<const TensorRecord> records);

// Python's repr() of the double nearest a float (shortest round trip; "1e-05", "0.5", "1.2345e+20").
std::string python_float_repr(double v);

} // namespace lowbit::scheme::nf4
