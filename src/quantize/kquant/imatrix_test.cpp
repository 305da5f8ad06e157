// SPDX-License-Identifier: MIT
// imatrix arithmetic (llama-quantize's load_imatrix) and the row-parallel quantization loop.
#include "quantize/kquant/imatrix.h"
#include "scheme/scheme_list.h"

#include <cmath>
#include <gtest/gtest.h>
#include <limits>
#include <random>

namespace lowbit::quantize::kquant {
namespace {

TEST(KquantImatrix, DividesByRoundedCountsPerMatrix) {
    const std::vector<float> sums = {2, 4, 6, 8, 1, 3};
    const std::vector<float> counts = {2.4f, 0.f}; // lround(2.4) = 2; a zero count gives importance 1
    auto imp = importance_from_imatrix("blk.0.ffn_up_exps.weight", sums, counts);
    ASSERT_TRUE(imp.ok()) << imp.error().message;
    EXPECT_EQ(*imp, (std::vector<float>{1, 2, 3, 1, 1, 1}));
}

TEST(KquantImatrix, RejectsBadEntries) {
    const std::vector<float> sums = {1, 2, 3};
    auto r = importance_from_imatrix("w", sums, std::vector<float>{1, 1});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_NE(r.error().message.find("'w'"), std::string::npos);
    EXPECT_FALSE(importance_from_imatrix("w", sums, std::vector<float>{}).ok());
    const std::vector<float> bad = {1, std::numeric_limits<float>::infinity(), 3};
    EXPECT_FALSE(importance_from_imatrix("w", bad, std::vector<float>{1}).ok());
}

TEST(KquantImatrix, QuantizeRowsMatchesRowByRowAtAnyThreadCount) {
    const int64_t n_rows = 37, n_per_row = 512;
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    std::vector<float> x(static_cast<size_t>(n_rows * n_per_row)), imp(static_cast<size_t>(n_per_row));
    for (auto& v : x) v = nd(rng);
    for (auto& v : imp) v = std::fabs(nd(rng)) + 0.1f;
    const auto* s = scheme::find_scheme(DType::kQ4_K);
    ASSERT_NE(s, nullptr);
    const uint64_t row_bytes = dtype_row_bytes(DType::kQ4_K, n_per_row).value();
    std::vector<uint8_t> want(row_bytes * n_rows);
    for (int64_t r = 0; r < n_rows; ++r)
        s->quantize_row(&x[r * n_per_row], &want[r * row_bytes], n_per_row, imp.data());
    for (const int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        std::vector<uint8_t> got(want.size());
        ASSERT_TRUE(quantize_rows(DType::kQ4_K, x.data(), n_rows, n_per_row, imp.data(), got.data(), &pool).ok());
        EXPECT_EQ(got, want) << threads << " threads";
    }
}

TEST(KquantImatrix, QuantizeRowsRejectsBadShapesAndTypes) {
    std::vector<float> x(300);
    std::vector<uint8_t> out(1024);
    const Status bad_len = quantize_rows(DType::kQ4_K, x.data(), 1, 300, nullptr, out.data());
    ASSERT_FALSE(bad_len.ok());
    EXPECT_EQ(bad_len.error().code, ErrorCode::kUsage);
    const Status bad_type = quantize_rows(DType::kIQ2_XXS, x.data(), 1, 256, nullptr, out.data());
    ASSERT_FALSE(bad_type.ok());
    EXPECT_EQ(bad_type.error().code, ErrorCode::kUnsupported);
}

} // namespace
} // namespace lowbit::quantize::kquant
