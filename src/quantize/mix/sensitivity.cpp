// SPDX-License-Identifier: MIT
#include "quantize/mix/sensitivity.h"

#include "core/thread_pool.h"
#include "quantize/kquant/imatrix.h"
#include "scheme/scheme_list.h"

#include <fmt/format.h>
#include <vector>

namespace lowbit::quantize::mix {

Result<double> weighted_error(DType type, const float* w, int64_t n_rows, int64_t n_per_row, const float* importance) {
    const scheme::SchemeTraits* s = scheme::find_scheme(type);
    const auto row_bytes = dtype_row_bytes(type, static_cast<uint64_t>(n_per_row));
    if (!s || !s->dequantize_row || !row_bytes)
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("cannot measure {} on rows of {} values", dtype_name(type), n_per_row));
    std::vector<uint8_t> q(static_cast<size_t>(*row_bytes * static_cast<uint64_t>(n_rows)));
    LOWBIT_TRY(kquant::quantize_rows(type, w, n_rows, n_per_row, importance, q.data()));
    std::vector<double> per_row(static_cast<size_t>(n_rows), 0.0);
    ThreadPool::global().parallel_for(n_rows, [&](int64_t begin, int64_t end, int) {
        std::vector<float> deq(static_cast<size_t>(n_per_row));
        for (int64_t r = begin; r < end; ++r) {
            s->dequantize_row(q.data() + static_cast<uint64_t>(r) * *row_bytes, deq.data(), n_per_row);
            const float* x = w + r * n_per_row;
            double e = 0.0;
            for (int64_t j = 0; j < n_per_row; ++j) {
                const double d = double(x[j]) - double(deq[static_cast<size_t>(j)]);
                e += (importance ? double(importance[j]) : 1.0) * d * d;
            }
            per_row[static_cast<size_t>(r)] = e;
        }
    });
    double total = 0.0;
    for (double e : per_row) total += e;
    return total;
}

} // namespace lowbit::quantize::mix
