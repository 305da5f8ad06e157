// SPDX-License-Identifier: MIT
// The DType table. Block sizes and ggml ids follow ggml's include/ggml.h and src/ggml-common.h.
#include "core/dtype.h"

#include "core/check.h"
#include "core/checked.h"

#include <array>
#include <cctype>
#include <string>

namespace lowbit {
namespace {

using D = DType;
constexpr std::array<DTypeTraits, static_cast<size_t>(D::kCount)> kTable{{
    {D::kF32, "f32", 1, 4, 0, "F32"},
    {D::kF16, "f16", 1, 2, 1, "F16"},
    {D::kBF16, "bf16", 1, 2, 30, "BF16"},
    {D::kF64, "f64", 1, 8, 28, "F64"},
    {D::kI8, "i8", 1, 1, 24, "I8"},
    {D::kU8, "u8", 1, 1, -1, "U8"},
    {D::kI16, "i16", 1, 2, 25, "I16"},
    {D::kI32, "i32", 1, 4, 26, "I32"},
    {D::kI64, "i64", 1, 8, 27, "I64"},
    {D::kBool, "bool", 1, 1, -1, "BOOL"},
    {D::kQ4_0, "q4_0", 32, 18, 2, ""},
    {D::kQ4_1, "q4_1", 32, 20, 3, ""},
    {D::kQ5_0, "q5_0", 32, 22, 6, ""},
    {D::kQ5_1, "q5_1", 32, 24, 7, ""},
    {D::kQ8_0, "q8_0", 32, 34, 8, ""},
    {D::kQ8_1, "q8_1", 32, 36, 9, ""},
    {D::kQ2_K, "q2_k", 256, 84, 10, ""},
    {D::kQ3_K, "q3_k", 256, 110, 11, ""},
    {D::kQ4_K, "q4_k", 256, 144, 12, ""},
    {D::kQ5_K, "q5_k", 256, 176, 13, ""},
    {D::kQ6_K, "q6_k", 256, 210, 14, ""},
    {D::kQ8_K, "q8_k", 256, 292, 15, ""},
    {D::kIQ2_XXS, "iq2_xxs", 256, 66, 16, ""},
    {D::kIQ2_XS, "iq2_xs", 256, 74, 17, ""},
    {D::kIQ3_XXS, "iq3_xxs", 256, 98, 18, ""},
    {D::kIQ1_S, "iq1_s", 256, 50, 19, ""},
    {D::kIQ4_NL, "iq4_nl", 32, 18, 20, ""},
    {D::kIQ3_S, "iq3_s", 256, 110, 21, ""},
    {D::kIQ2_S, "iq2_s", 256, 82, 22, ""},
    {D::kIQ4_XS, "iq4_xs", 256, 136, 23, ""},
    {D::kIQ1_M, "iq1_m", 256, 56, 29, ""},
    {D::kTQ1_0, "tq1_0", 256, 54, 34, ""},
    {D::kTQ2_0, "tq2_0", 256, 66, 35, ""},
    {D::kMXFP4, "mxfp4", 32, 17, 39, ""},
    {D::kI4Z, "i4z", 32, 20, -1, ""},
    {D::kNF4x64, "nf4x64", 64, 36, -1, ""},
    {D::kFP4x64, "fp4x64", 64, 36, -1, ""},
    {D::kI8Z, "i8z", 32, 36, -1, ""},
}};

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

} // namespace

const DTypeTraits& dtype_traits(DType t) {
    const auto i = static_cast<size_t>(t);
    LOWBIT_CHECK(i < kTable.size() && kTable[i].dtype == t);
    return kTable[i];
}

std::optional<DType> dtype_from_ggml(int ggml_type) {
    for (const auto& tr : kTable)
        if (tr.ggml_type == ggml_type && ggml_type >= 0) return tr.dtype;
    return std::nullopt;
}

std::optional<DType> dtype_from_safetensors(std::string_view name) {
    for (const auto& tr : kTable)
        if (!tr.safetensors_name.empty() && tr.safetensors_name == name) return tr.dtype;
    return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) {
    const std::string l = lower(name);
    for (const auto& tr : kTable)
        if (tr.name == l) return tr.dtype;
    return std::nullopt;
}

std::optional<uint64_t> dtype_row_bytes(DType t, uint64_t n_elems) {
    const auto& tr = dtype_traits(t);
    const auto be = static_cast<uint64_t>(tr.block_elems);
    if (n_elems % be != 0) return std::nullopt;
    return checked_mul(n_elems / be, static_cast<uint64_t>(tr.block_bytes));
}

} // namespace lowbit
