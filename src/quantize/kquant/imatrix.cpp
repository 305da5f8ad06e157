// SPDX-License-Identifier: MIT
// imatrix entry -> importance, and the row-parallel quantization loop (llama_tensor_quantize_impl's job).
#include "quantize/kquant/imatrix.h"

#include "kernel/cpu/quant/quant_rows.h"
#include "scheme/scheme_list.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace lowbit::quantize::kquant {

Result<std::vector<float>> importance_from_imatrix(std::string_view name, std::span<const float> in_sum2,
                                                   std::span<const float> counts) {
    if (counts.empty() || in_sum2.empty() || in_sum2.size() % counts.size() != 0) {
        return make_error(ErrorCode::kBadInput,
                          fmt::format("imatrix entry '{}' has {} sums and {} counts; the sums must be a non-empty "
                                      "multiple of the counts",
                                      name, in_sum2.size(), counts.size()));
    }
    const size_t ne0 = in_sum2.size() / counts.size();
    std::vector<float> out(in_sum2.size());
    for (size_t j = 0; j < counts.size(); ++j) {
        if (!std::isfinite(counts[j])) {
            return make_error(ErrorCode::kBadInput, fmt::format("imatrix entry '{}' has a non-finite count", name));
        }
        const float count = static_cast<float>(std::lround(counts[j])); // llama.cpp stores counts as integers
        for (size_t i = 0; i < ne0; ++i) {
            const float s = in_sum2[j * ne0 + i];
            const float v = count > 0.0f ? s / count : 1.0f;
            if (!std::isfinite(v)) {
                return make_error(ErrorCode::kBadInput,
                                  fmt::format("imatrix entry '{}' has a non-finite value at column {}", name, i));
            }
            out[j * ne0 + i] = v;
        }
    }
    return out;
}

Status quantize_rows(DType dtype, const float* src, int64_t n_rows, int64_t n_per_row, const float* importance,
                     void* dst, ThreadPool* pool) {
    const scheme::SchemeTraits* s = scheme::find_scheme(dtype);
    if (!s || !s->quantize_row) {
        return make_error(ErrorCode::kUnsupported, fmt::format("lowbit cannot quantize to {}", dtype_name(dtype)));
    }
    const auto row_bytes = dtype_row_bytes(dtype, static_cast<uint64_t>(n_per_row));
    if (!row_bytes || n_per_row <= 0) {
        return make_error(ErrorCode::kUsage, fmt::format("rows of {} values cannot be stored as {} (block of {})",
                                                         n_per_row, dtype_name(dtype), dtype_block_elems(dtype)));
    }
    ThreadPool& p = pool ? *pool : ThreadPool::global();
    auto* out = static_cast<uint8_t*>(dst);
    // Rows without importance: the CPU level's fast quantizer where there is one (the same bytes).
    kernel::cpu::quant::QuantizeRowFn fn =
        importance ? nullptr : kernel::cpu::quant::find_quantize_row_plain(dtype, kernel::cpu::qdot::active_level());
    if (!fn) fn = s->quantize_row;
    // About 16k values per chunk, as llama.cpp's min_chunk_size, so small tensors stay on one thread.
    const int64_t grain = std::max<int64_t>(1, (int64_t{32} * 512) / n_per_row);
    p.parallel_for(
        n_rows,
        [&](int64_t begin, int64_t end, int) {
            for (int64_t r = begin; r < end; ++r) {
                fn(src + r * n_per_row, out + static_cast<uint64_t>(r) * *row_bytes, n_per_row, importance);
            }
        },
        grain);
    return ok_status();
}

} // namespace lowbit::quantize::kquant
