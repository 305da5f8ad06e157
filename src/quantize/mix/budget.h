// SPDX-License-Identifier: MIT
// Mixed precision to a byte budget: given, for every tensor, candidate storage types with their bytes and a
// predicted damage (sensitivity), choose one candidate per tensor so that the summed damage is minimal and the
// summed bytes do not exceed the budget. This is a multiple-choice knapsack; it is solved exactly (up to the
// byte resolution below) by dynamic programming over the budget, so the result is never worse than any uniform
// or hand-ruled assignment of the same or smaller size, and its damage never rises when the budget grows.
//
// Resolution: bytes are counted in units of ceil(max_bytes / kBudgetUnits) (max_bytes = every tensor at its
// largest candidate), each candidate's bytes rounded up to whole units; the answer therefore never exceeds the
// budget and leaves at most n_items units unused. The unit depends on the candidates only, not on the budget,
// which keeps the damage monotone in the budget.
//
// Pure arithmetic: no tensors, no files. The pipeline's `quantize --method mix` fills the candidates.
#pragma once

#include "core/dtype.h"
#include "core/error.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace lowbit::quantize::mix {

inline constexpr int64_t kBudgetUnits = int64_t{1} << 17;

struct Candidate {
    DType type = DType::kF32;
    uint64_t bytes = 0; // storage of the whole tensor in this type
    double damage = 0;  // predicted damage (>= 0, finite), additive across tensors
};

struct Item {
    std::string name;                  // for messages
    std::vector<Candidate> candidates; // at least one
};

struct Allocation {
    std::vector<size_t> choice; // per item, index into its candidates
    uint64_t bytes = 0;         // exact total of the chosen candidates
    double damage = 0;          // total predicted damage
};

struct FeasibleRange {
    uint64_t min_bytes = 0; // every item at its smallest candidate
    uint64_t max_bytes = 0; // every item at its largest candidate
};

// Errors: kUsage for an item without candidates or with a negative / non-finite damage.
Result<FeasibleRange> feasible_range(std::span<const Item> items);

// Minimises total damage with total bytes <= budget_bytes. Errors: kUsage when budget_bytes is outside the
// feasible range (the message gives the range in bytes; callers check the range first to word it in their
// units), and those of feasible_range.
Result<Allocation> allocate(std::span<const Item> items, uint64_t budget_bytes);

} // namespace lowbit::quantize::mix
