// SPDX-License-Identifier: MIT
// The budget allocator: infeasible budgets refused with the range, budget respected, monotone in the budget,
// exact against brute force on small cases, better than a uniform choice where sensitivities differ.
#include "quantize/mix/budget.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::quantize::mix {
namespace {

// Three types per tensor: bytes grow, damage shrinks; `sens` scales the damage.
Item make_item(const std::string& name, uint64_t n_elems, double sens) {
    Item it;
    it.name = name;
    it.candidates = {{DType::kQ3_K, n_elems * 3 / 8, sens * 8.0},
                     {DType::kQ4_K, n_elems * 4 / 8, sens * 2.0},
                     {DType::kQ6_K, n_elems * 6 / 8, sens * 0.25}};
    return it;
}

TEST(MixBudget, RefusesBudgetsOutsideTheFeasibleRange) {
    const std::vector<Item> items = {make_item("a", 256, 1), make_item("b", 512, 1)};
    auto r = feasible_range(items);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->min_bytes, 96u + 192u);
    EXPECT_EQ(r->max_bytes, 192u + 384u);
    for (uint64_t b : {uint64_t{0}, r->min_bytes - 1, r->max_bytes + 1}) {
        auto a = allocate(items, b);
        ASSERT_FALSE(a.ok()) << b;
        EXPECT_EQ(a.error().code, ErrorCode::kUsage);
        EXPECT_NE(a.error().message.find("feasible range 288 .. 576 bytes"), std::string::npos) << a.error().message;
    }
    EXPECT_TRUE(allocate(items, r->min_bytes).ok());
    EXPECT_TRUE(allocate(items, r->max_bytes).ok());
}

TEST(MixBudget, RefusesBadItems) {
    std::vector<Item> items = {Item{"empty", {}}};
    auto a = allocate(items, 10);
    ASSERT_FALSE(a.ok());
    EXPECT_NE(a.error().message.find("'empty' has no candidate"), std::string::npos);
    items = {Item{"neg", {{DType::kQ4_K, 10, -1.0}}}};
    EXPECT_FALSE(allocate(items, 10).ok());
    EXPECT_FALSE(allocate(std::vector<Item>{}, 10).ok());
}

TEST(MixBudget, ExtremesPickSmallestAndLargest) {
    const std::vector<Item> items = {make_item("a", 256, 1), make_item("b", 512, 3)};
    auto lo = allocate(items, 288);
    ASSERT_TRUE(lo.ok());
    EXPECT_EQ(lo->choice, (std::vector<size_t>{0, 0}));
    EXPECT_EQ(lo->bytes, 288u);
    auto hi = allocate(items, 576);
    ASSERT_TRUE(hi.ok());
    EXPECT_EQ(hi->choice, (std::vector<size_t>{2, 2}));
    EXPECT_DOUBLE_EQ(hi->damage, 0.25 + 0.75);
}

// Exhaustive search over all assignments.
double brute_force(const std::vector<Item>& items, uint64_t budget) {
    double best = 1e300;
    std::vector<size_t> k(items.size(), 0);
    while (true) {
        uint64_t b = 0;
        double d = 0;
        for (size_t i = 0; i < items.size(); ++i) {
            b += items[i].candidates[k[i]].bytes;
            d += items[i].candidates[k[i]].damage;
        }
        if (b <= budget) best = std::min(best, d);
        size_t i = 0;
        while (i < items.size() && ++k[i] == items[i].candidates.size()) k[i++] = 0;
        if (i == items.size()) break;
    }
    return best;
}

TEST(MixBudget, MatchesBruteForceAndRespectsTheBudget) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> sz(1, 64);
    std::uniform_real_distribution<double> sens(0.01, 10.0);
    for (int trial = 0; trial < 20; ++trial) {
        std::vector<Item> items;
        for (int i = 0; i < 6; ++i) items.push_back(make_item(fmt::format("t{}", i), 8 * uint64_t(sz(rng)), sens(rng)));
        const FeasibleRange r = *feasible_range(items);
        for (uint64_t b = r.min_bytes; b <= r.max_bytes; b += 7) {
            auto a = allocate(items, b);
            ASSERT_TRUE(a.ok()) << a.error().message;
            EXPECT_LE(a->bytes, b);
            uint64_t bytes = 0;
            double dmg = 0;
            for (size_t i = 0; i < items.size(); ++i) {
                bytes += items[i].candidates[a->choice[i]].bytes;
                dmg += items[i].candidates[a->choice[i]].damage;
            }
            EXPECT_EQ(bytes, a->bytes);
            EXPECT_DOUBLE_EQ(dmg, a->damage);
            // Small totals: one byte per unit, so the DP is exact.
            EXPECT_NEAR(a->damage, brute_force(items, b), 1e-9) << "trial " << trial << " budget " << b;
        }
    }
}

TEST(MixBudget, DamageIsMonotoneInTheBudgetAndBudgetIsNearlyUsed) {
    // Large tensors (bytes >> the resolution unit), many of them: the rounding path.
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> sens(0.1, 5.0);
    std::vector<Item> items;
    for (int i = 0; i < 60; ++i) items.push_back(make_item(fmt::format("blk.{}", i), uint64_t(1) << 20, sens(rng)));
    const FeasibleRange r = *feasible_range(items);
    const uint64_t unit = (r.max_bytes + kBudgetUnits - 1) / kBudgetUnits;
    double prev = 1e300;
    for (int s = 0; s <= 40; ++s) {
        const uint64_t b = r.min_bytes + (r.max_bytes - r.min_bytes) * uint64_t(s) / 40;
        auto a = allocate(items, b);
        ASSERT_TRUE(a.ok()) << a.error().message;
        EXPECT_LE(a->bytes, b);
        EXPECT_LE(a->damage, prev) << "budget " << b;
        prev = a->damage;
        // Candidate steps are 2^17 .. 3 * 2^17 bytes here: the unused budget is below the largest step plus the
        // rounding slack (otherwise some upgrade would still fit).
        EXPECT_LT(b - a->bytes, 3 * (uint64_t(1) << 17) + items.size() * unit) << "budget " << b;
    }
}

TEST(MixBudget, BeatsUniformWhenSensitivitiesDiffer) {
    // Two sensitive tensors among eight: the uniform Q4_K choice spends bits where they do not help.
    std::vector<Item> items;
    for (int i = 0; i < 8; ++i) items.push_back(make_item(fmt::format("t{}", i), 4096, i < 2 ? 20.0 : 0.5));
    uint64_t uniform_bytes = 0;
    double uniform_damage = 0;
    for (const Item& it : items) {
        uniform_bytes += it.candidates[1].bytes;
        uniform_damage += it.candidates[1].damage;
    }
    auto a = allocate(items, uniform_bytes);
    ASSERT_TRUE(a.ok());
    EXPECT_LE(a->bytes, uniform_bytes);
    EXPECT_LT(a->damage, 0.5 * uniform_damage);
    EXPECT_EQ(a->choice[0], 2u); // the sensitive ones get Q6_K
    EXPECT_EQ(a->choice[1], 2u);
}

} // namespace
} // namespace lowbit::quantize::mix
