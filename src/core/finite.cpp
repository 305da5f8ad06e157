// SPDX-License-Identifier: MIT
// Non-finite weight check (see finite.h).
#include "core/finite.h"

#include <cmath>
#include <fmt/format.h>

namespace lowbit {

int64_t first_non_finite(const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(x[i])) return i;
    return n;
}

Error non_finite_error(std::string_view tensor, int64_t index, int64_t n_cols, float v) {
    const std::string where = tensor.empty() ? std::string() : fmt::format("tensor '{}': ", tensor);
    const std::string row = n_cols > 0 ? fmt::format(" (row {})", index / n_cols) : std::string();
    return make_error(
        ErrorCode::kBadInput,
        fmt::format("{}weight element {}{} is {}; quantization needs finite weights", where, index, row, v));
}

Status check_finite_weights(const float* w, int64_t n, int64_t n_cols, std::string_view tensor) {
    const int64_t i = first_non_finite(w, n);
    if (i < n) return non_finite_error(tensor, i, n_cols, w[i]);
    return ok_status();
}

} // namespace lowbit
