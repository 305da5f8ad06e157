// SPDX-License-Identifier: MIT
// HessianSet: per-slot H = 2 XᵀX / n accumulators (f64, BLAS dsyrk through gptq::HessianAccumulator).
#include "quantize/calib/calib_stats.h"

#include "core/check.h"

namespace lowbit::quantize {

int HessianSet::resolve(int slot) const {
    auto it = alias_.find(slot);
    return it == alias_.end() ? slot : it->second;
}

void HessianSet::add(int slot, const float* x, int64_t n_tokens, int64_t n_cols) {
    if (resolve(slot) != slot) return; // an alias: its source slot sees the same rows
    auto& acc = acc_[slot];
    if (!acc) {
        acc = std::make_unique<gptq::HessianAccumulator>(n_cols);
        n_cols_[slot] = n_cols;
    }
    LOWBIT_CHECK(n_cols_[slot] == n_cols);
    acc->add(x, n_tokens);
}

bool HessianSet::has(int slot) const {
    return acc_.count(resolve(slot)) != 0;
}

CalibStats HessianSet::stats(int slot) const {
    CalibStats s;
    auto it = acc_.find(resolve(slot));
    if (it == acc_.end()) return s;
    s.n_cols = n_cols_.at(it->first);
    s.n_tokens = it->second->n_samples();
    s.hessian = it->second->finish();
    return s;
}

} // namespace lowbit::quantize
