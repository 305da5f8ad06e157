// SPDX-License-Identifier: MIT
// DType: element types of tensors, including GGUF's quantized block types. One table (dtype.cpp) holds
// each type's name, block size, bytes per block and its ids in GGUF and safetensors.
// Goals: sizes and ids only. Non-goals: how to quantize (scheme/), how to compute (kernel/).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace lowbit {

enum class DType : uint8_t {
    // Plain element types.
    kF32,
    kF16,
    kBF16,
    kF64,
    kI8,
    kU8,
    kI16,
    kI32,
    kI64,
    kBool,
    // GGUF block types (ggml_type ids in the table).
    kQ4_0,
    kQ4_1,
    kQ5_0,
    kQ5_1,
    kQ8_0,
    kQ8_1,
    kQ2_K,
    kQ3_K,
    kQ4_K,
    kQ5_K,
    kQ6_K,
    kQ8_K,
    kIQ2_XXS,
    kIQ2_XS,
    kIQ3_XXS,
    kIQ1_S,
    kIQ4_NL,
    kIQ3_S,
    kIQ2_S,
    kIQ4_XS,
    kIQ1_M,
    kTQ1_0,
    kTQ2_0,
    kMXFP4,
    // lowbit's in-memory repacks of Hugging Face quantized layouts (scheme/packed4/; never in a file).
    kI4Z,    // 32 x 4-bit codes, f16 scale d and f16 zero z: w = d * (q - z)  (GPTQ/AWQ/HQQ/RTN int4 groups)
    kNF4x64, // 64 x 4-bit NF4 codes, f32 absmax: w = nf4[q] * absmax       (bitsandbytes nf4)
    kFP4x64, // 64 x 4-bit FP4 codes, f32 absmax: w = fp4[q] * absmax       (bitsandbytes fp4)
    kI8Z,    // 32 x 8-bit codes, f16 scale d and f16 zero z: w = d * (q - z)  (GPTQ/HQQ/RTN int8 groups)
    kCount
};

struct DTypeTraits {
    DType dtype;
    std::string_view name;             // lowercase: "f32", "q4_k" (GGUF types use ggml's names, lowercase)
    int64_t block_elems;               // elements per block (1 for plain types)
    int64_t block_bytes;               // bytes per block
    int ggml_type;                     // ggml_type id, -1 if GGUF has none
    std::string_view safetensors_name; // "F32", "BF16", ... ; empty if safetensors has none
};

const DTypeTraits& dtype_traits(DType t);
inline std::string_view dtype_name(DType t) {
    return dtype_traits(t).name;
}
inline int64_t dtype_block_elems(DType t) {
    return dtype_traits(t).block_elems;
}
inline int64_t dtype_block_bytes(DType t) {
    return dtype_traits(t).block_bytes;
}
inline bool dtype_is_quantized(DType t) {
    return dtype_traits(t).block_elems > 1;
}
// Bits per weight of the storage alone (block bytes * 8 / block elems).
inline double dtype_bpw(DType t) {
    return 8.0 * double(dtype_block_bytes(t)) / double(dtype_block_elems(t));
}

std::optional<DType> dtype_from_ggml(int ggml_type);
std::optional<DType> dtype_from_safetensors(std::string_view name);
std::optional<DType> dtype_from_name(std::string_view name); // case-insensitive: "q4_k", "Q4_K", "bf16"

// Bytes needed for a row of n_elems; nullopt if n_elems is not a multiple of the block size or overflows.
std::optional<uint64_t> dtype_row_bytes(DType t, uint64_t n_elems);

} // namespace lowbit
