// SPDX-License-Identifier: MIT
// The scheme table. One row per storage type; the functions live in the type's own folder.
#include "scheme/scheme_list.h"

#include <array>

#include "scheme/plain/plain.h"

namespace lowbit::scheme {
namespace {

constexpr SchemeTraits kSchemes[] = {
    {DType::kF32, plain::dequantize_row_f32, plain::quantize_row_f32, 0.0},
    {DType::kF16, plain::dequantize_row_f16, plain::quantize_row_f16, 1e-3},
    {DType::kBF16, plain::dequantize_row_bf16, plain::quantize_row_bf16, 4e-3},
};

} // namespace

std::span<const SchemeTraits> all_schemes() { return kSchemes; }

const SchemeTraits* find_scheme(DType dtype) {
    for (const auto& s : kSchemes)
        if (s.dtype == dtype) return &s;
    return nullptr;
}

} // namespace lowbit::scheme
