// SPDX-License-Identifier: MIT
// CalibStats: activation statistics of one linear layer's inputs, gathered over calibration tokens — the
// input of the calibrated algorithms (GPTQ needs H = 2 XᵀX / n; imatrix/AWQ need Σx² / mean |x|, both on the
// diagonal side). HessianSet accumulates several of them at once, keyed by a small slot number (the caller's
// linear id), sharing one accumulator between linears that see the same input (q/k/v, gate/up).
#pragma once

#include "quantize/gptq/gptq.h"

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace lowbit::quantize {

struct CalibStats {
    int64_t n_cols = 0;          // in_features
    int64_t n_tokens = 0;        // rows of X seen
    std::vector<double> hessian; // [n_cols, n_cols] 2 XᵀX / n_tokens, full symmetric (f64)
};

// Thread-compatible (not thread-safe): one add() at a time.
class HessianSet {
  public:
    // Declares that `slot` reads the same input as `source_slot` (its add() calls are then ignored).
    void alias(int slot, int source_slot) { alias_[slot] = source_slot; }
    // Adds x [n_tokens, n_cols] to the slot's accumulator (created on first use). A later call with another
    // n_cols for the same slot is an internal error (LOWBIT_CHECK).
    void add(int slot, const float* x, int64_t n_tokens, int64_t n_cols);
    bool has(int slot) const;
    // The slot's statistics (through its alias); an empty CalibStats when the slot saw nothing.
    CalibStats stats(int slot) const;
    void clear() { acc_.clear(); }

  private:
    int resolve(int slot) const;
    std::map<int, int> alias_;
    std::map<int, std::unique_ptr<gptq::HessianAccumulator>> acc_;
    std::map<int, int64_t> n_cols_;
};

} // namespace lowbit::quantize
