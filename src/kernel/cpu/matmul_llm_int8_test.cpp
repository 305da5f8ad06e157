// SPDX-License-Identifier: MIT
// cpu::matmul_llm_int8 (threaded over output rows) == ref::matmul_int8_decomp (one call), bit for bit,
// with and without activation outliers, on shapes that break the 16-row tasks; plus dispatch of kI8.
#include "kernel/cpu/cpu_ops.h"
#include "kernel/kernel_list.h"
#include "kernel/ref/matmul_int8_decomp.h"

#include <gtest/gtest.h>
#include <random>
#include <vector>

namespace lowbit::kernel {
namespace {

TEST(KernelLlmInt8, CpuSlicesEqualRefDecomposition) {
    ThreadPool pool(3);
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_int_distribution<int> qd(-127, 127);
    for (int64_t m : {1, 3, 17})
        for (int64_t n : {1, 63, 65, 130})
            for (int64_t k : {7, 96}) {
                std::vector<float> x(static_cast<size_t>(m * k)), scb(static_cast<size_t>(n)),
                    bias(static_cast<size_t>(n));
                std::vector<int8_t> w(size_t(n * k));
                for (auto& v : x) v = nd(rng);
                x[size_t(k / 2)] = 9.5f; // one outlier column (row 0)
                for (auto& v : w) v = int8_t(qd(rng));
                for (auto& v : scb) v = 0.5f + std::fabs(nd(rng));
                for (auto& v : bias) v = nd(rng);
                WeightView wv = make_weight(w.data(), DType::kI8, n, k);
                wv.row_scale = scb.data();
                for (float threshold : {0.0f, 6.0f}) {
                    wv.outlier_threshold = threshold;
                    std::vector<float> want(size_t(m * n)), got(size_t(m * n), -1.0f);
                    ref::Int8DecompStats stats;
                    ASSERT_TRUE(
                        ref::matmul_int8_decomp(x.data(), m, k, w.data(), scb.data(), n, threshold, want.data(), &stats)
                            .ok());
                    EXPECT_EQ(stats.n_outlier_cols, threshold > 0 ? 1 : 0);
                    for (size_t i = 0; i < want.size(); ++i) want[i] += bias[i % size_t(n)];
                    cpu::matmul_llm_int8(x.data(), m, wv, bias.data(), got.data(), &pool);
                    for (size_t i = 0; i < want.size(); ++i)
                        ASSERT_EQ(got[i], want[i]) << "m=" << m << " n=" << n << " k=" << k << " i=" << i;
                    // The dispatcher runs the same decomposition on both back ends.
                    std::vector<float> via(size_t(m * n));
                    matmul(Exec{Backend::kRef, nullptr}, x.data(), m, wv, bias.data(), via.data());
                    EXPECT_EQ(via, want);
                    matmul(Exec{Backend::kCpu, &pool}, x.data(), m, wv, bias.data(), via.data());
                    EXPECT_EQ(via, want);
                }
            }
    EXPECT_TRUE(can_matmul(DType::kI8));
    EXPECT_STREQ(find_kernel(Op::kMatmul, DType::kI8, Backend::kCpu)->name, "cpu::matmul_llm_int8");
}

} // namespace
} // namespace lowbit::kernel
