// SPDX-License-Identifier: MIT
// LLM.int8 decomposed matmul: matches an f32 reference with injected outlier columns and is much better than
// plain int8 (threshold 0); hand example; bad arguments.
#include "kernel/ref/matmul_int8_decomp.h"
#include "scheme/llm_int8/llm_int8.h"

#include <cmath>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::kernel::ref {
namespace {

double rel_err(const std::vector<float>& a, const std::vector<double>& ref) {
    double se = 0, s2 = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        se += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
        s2 += ref[i] * ref[i];
    }
    return std::sqrt(se / s2);
}

TEST(MatmulInt8Decomp, OutlierColumnsAreDecomposed) {
    const int64_t m = 17, k = 256, n = 48;
    std::mt19937 rng(4);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(n * k));
    for (float& v : x) v = d(rng);
    for (float& v : w) v = 0.05f * d(rng);
    for (int64_t col : {3, 77, 200}) // LLM.int8's emergent features: a few huge activation columns
        for (int64_t i = 0; i < m; ++i) x[size_t(i * k + col)] = 60.0f * (i % 2 ? 1.0f : -1.0f) + d(rng);
    auto q = scheme::llm_int8::quantize(w.data(), n, k);
    ASSERT_TRUE(q.ok());
    // Reference: x times the dequantized weight in f64 (isolates the activation quantization error).
    std::vector<float> wd(w.size());
    scheme::llm_int8::dequantize(*q, wd.data());
    std::vector<double> ref(static_cast<size_t>(m * n), 0.0);
    for (int64_t i = 0; i < m; ++i)
        for (int64_t r = 0; r < n; ++r)
            for (int64_t j = 0; j < k; ++j)
                ref[size_t(i * n + r)] += double(x[size_t(i * k + j)]) * wd[size_t(r * k + j)];
    std::vector<float> y(static_cast<size_t>(m * n)), y_plain(y.size());
    Int8DecompStats st;
    ASSERT_TRUE(matmul_int8_decomp(x.data(), m, k, q->weight.data(), q->scb.data(), n, 6.0f, y.data(), &st).ok());
    EXPECT_EQ(st.n_outlier_cols, 3);
    ASSERT_TRUE(matmul_int8_decomp(x.data(), m, k, q->weight.data(), q->scb.data(), n, 0.0f, y_plain.data(), &st).ok());
    EXPECT_EQ(st.n_outlier_cols, 0);
    const double e = rel_err(y, ref), e_plain = rel_err(y_plain, ref);
    EXPECT_LT(e, 0.01);
    EXPECT_GT(e_plain, 5 * e) << "decomposed " << e << " plain " << e_plain;
}

TEST(MatmulInt8Decomp, HandExample) {
    // x = [1, 10] (10 is an outlier), W row = [127, 127] with SCB 1 -> w = [1, 1]; y = 1 + 10 = 11.
    const std::vector<float> x = {1.0f, 10.0f};
    const std::vector<int8_t> w = {127, 127};
    const std::vector<float> scb = {1.0f};
    float y = 0;
    ASSERT_TRUE(matmul_int8_decomp(x.data(), 1, 2, w.data(), scb.data(), 1, 6.0f, &y).ok());
    EXPECT_NEAR(y, 11.0f, 1e-5f);
    EXPECT_EQ(matmul_int8_decomp(x.data(), 0, 2, w.data(), scb.data(), 1, 6.0f, &y).error().code, ErrorCode::kUsage);
}

} // namespace
} // namespace lowbit::kernel::ref
