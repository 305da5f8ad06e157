// SPDX-License-Identifier: MIT
// Exact multiple-choice knapsack by dynamic programming over byte units (see budget.h).
#include "quantize/mix/budget.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>

namespace lowbit::quantize::mix {

Result<FeasibleRange> feasible_range(std::span<const Item> items) {
    if (items.empty()) return make_error(ErrorCode::kUsage, "mixed-precision allocation needs at least one tensor");
    FeasibleRange r;
    for (const Item& it : items) {
        if (it.candidates.empty())
            return make_error(ErrorCode::kUsage, fmt::format("tensor '{}' has no candidate type", it.name));
        uint64_t lo = std::numeric_limits<uint64_t>::max(), hi = 0;
        for (const Candidate& c : it.candidates) {
            if (!std::isfinite(c.damage) || c.damage < 0)
                return make_error(ErrorCode::kUsage, fmt::format("tensor '{}': damage of {} is {}, expected a finite "
                                                                 "value >= 0",
                                                                 it.name, dtype_name(c.type), c.damage));
            lo = std::min(lo, c.bytes);
            hi = std::max(hi, c.bytes);
        }
        r.min_bytes += lo;
        r.max_bytes += hi;
    }
    return r;
}

Result<Allocation> allocate(std::span<const Item> items, uint64_t budget_bytes) {
    LOWBIT_ASSIGN_OR_RETURN(const FeasibleRange range, feasible_range(items));
    if (budget_bytes < range.min_bytes || budget_bytes > range.max_bytes)
        return make_error(ErrorCode::kUsage,
                          fmt::format("budget of {} bytes is outside the feasible range {} .. {} bytes (every tensor "
                                      "at its smallest .. largest candidate type)",
                                      budget_bytes, range.min_bytes, range.max_bytes));
    const uint64_t unit = std::max<uint64_t>(1, (range.max_bytes + kBudgetUnits - 1) / kBudgetUnits);
    const auto units_of = [unit](uint64_t b) { return static_cast<int64_t>((b + unit - 1) / unit); };
    const int64_t cap = static_cast<int64_t>(budget_bytes / unit);
    const size_t n = items.size();
    constexpr double kInf = std::numeric_limits<double>::infinity();
    // best[u] = least damage of the items so far using exactly u units (inf: unreachable).
    std::vector<double> best(static_cast<size_t>(cap + 1), kInf), next(best.size());
    std::vector<uint8_t> pick(n * best.size(), 0); // choice of item i at units u, for the backtrack
    best[0] = 0;
    for (size_t i = 0; i < n; ++i) {
        const auto& cands = items[i].candidates;
        if (cands.size() > 255)
            return make_error(ErrorCode::kUsage,
                              fmt::format("tensor '{}' has more than 255 candidates", items[i].name));
        std::fill(next.begin(), next.end(), kInf);
        uint8_t* row = pick.data() + i * best.size();
        for (size_t k = 0; k < cands.size(); ++k) {
            const int64_t w = units_of(cands[k].bytes);
            const double d = cands[k].damage;
            for (int64_t u = cap; u >= w; --u) {
                const double v = best[static_cast<size_t>(u - w)] + d;
                if (v < next[static_cast<size_t>(u)]) {
                    next[static_cast<size_t>(u)] = v;
                    row[u] = static_cast<uint8_t>(k);
                }
            }
        }
        best.swap(next);
    }
    int64_t u_best = -1;
    for (int64_t u = 0; u <= cap; ++u)
        if (best[static_cast<size_t>(u)] < kInf &&
            (u_best < 0 || best[static_cast<size_t>(u)] < best[static_cast<size_t>(u_best)]))
            u_best = u;
    // Every tensor at its smallest candidate fits exactly (budget >= min_bytes), even where rounding to units
    // lost it; taking the better of it and the DP keeps the result monotone in the budget.
    Allocation smallest;
    smallest.choice.resize(n);
    for (size_t i = 0; i < n; ++i) {
        const auto& c = items[i].candidates;
        size_t k = 0;
        for (size_t j = 1; j < c.size(); ++j)
            if (c[j].bytes < c[k].bytes || (c[j].bytes == c[k].bytes && c[j].damage < c[k].damage)) k = j;
        smallest.choice[i] = k;
        smallest.bytes += c[k].bytes;
        smallest.damage += c[k].damage;
    }
    if (u_best < 0 || smallest.damage <= best[static_cast<size_t>(u_best)]) return smallest;
    Allocation a;
    a.choice.resize(n);
    int64_t u = u_best;
    for (size_t i = n; i-- > 0;) {
        const size_t k = pick[i * best.size() + static_cast<size_t>(u)];
        a.choice[i] = k;
        u -= units_of(items[i].candidates[k].bytes);
        a.bytes += items[i].candidates[k].bytes;
        a.damage += items[i].candidates[k].damage;
    }
    return a;
}

} // namespace lowbit::quantize::mix
