// SPDX-License-Identifier: MIT
// CUDA HQQ solver against the CPU solver (the oracle here; hqq_solver_test/the hqq oracle test tie the CPU
// solver to hqq): identical packed codes, scale/zero within 1 ulp, the same iteration count and errors, on
// shapes x bits x axes x group sizes x input dtypes, heavy tails and weights large enough to hit the lp shrink.
// Skips when no CUDA device can be used.
#include "core/half.h"
#include "quantize/hqq/hqq_algo.h"
#include "quantize/hqq/hqq_cuda.h"
#include "quantize/hqq/hqq_solver.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::quantize::hqq {
namespace {

struct Case {
    int64_t rows, cols;
    int nbits;
    int64_t group;
    int axis;
    float nu;    // student-t degrees of freedom (0: normal)
    float sigma; // scale of the weights (large values make |W - Wr| pass the shrink threshold)
    DType in;    // dtype handed to the device
    DType meta;  // scale/zero storage
};

std::string name(const Case& c) {
    return std::to_string(c.rows) + "x" + std::to_string(c.cols) + " " + std::to_string(c.nbits) + "-bit g" +
           std::to_string(c.group) + " axis " + std::to_string(c.axis) + " nu " + std::to_string(c.nu) + " sigma " +
           std::to_string(c.sigma) + " in " + std::string(dtype_name(c.in)) + " meta " +
           std::string(dtype_name(c.meta));
}

// Weights as f32 (already rounded to `in`, so the CPU sees exactly what the device widens) + the raw input.
void make_weights(const Case& c, uint32_t seed, std::vector<float>* f32, std::vector<uint16_t>* half) {
    std::mt19937 rng(seed);
    std::student_t_distribution<float> t(c.nu > 0 ? c.nu : 1.0f);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const size_t n = size_t(c.rows * c.cols);
    f32->resize(n);
    half->resize(n);
    for (size_t i = 0; i < n; ++i) {
        float v = c.sigma * (c.nu > 0 ? t(rng) : nd(rng));
        if (c.in == DType::kBF16) {
            (*half)[i] = f32_to_bf16(v);
            v = bf16_to_f32((*half)[i]);
        } else if (c.in == DType::kF16) {
            (*half)[i] = f32_to_f16(v);
            v = f16_to_f32((*half)[i]);
        }
        (*f32)[i] = v;
    }
}

int64_t ulp_distance(float a, float b) {
    int32_t ia, ib;
    std::memcpy(&ia, &a, 4);
    std::memcpy(&ib, &b, 4);
    if (ia < 0) ia = int32_t(0x80000000u - uint32_t(ia));
    if (ib < 0) ib = int32_t(0x80000000u - uint32_t(ib));
    return std::llabs(int64_t(ia) - int64_t(ib));
}

class HqqCuda : public ::testing::Test {
  protected:
    void SetUp() override {
        const Status s = hqq_cuda_available();
        if (!s.ok()) GTEST_SKIP() << s.error().message;
        auto r = HqqCudaSolver::create(0);
        ASSERT_TRUE(r.ok()) << r.error().message;
        solver_ = std::move(*r);
    }
    std::unique_ptr<HqqCudaSolver> solver_;
};

void expect_same(const HqqSolveResult& cpu, const HqqSolveResult& gpu, const std::string& what) {
    ASSERT_EQ(cpu.errors.size(), gpu.errors.size()) << what;
    for (size_t i = 0; i < cpu.errors.size(); ++i)
        EXPECT_LE(ulp_distance(float(cpu.errors[i]), float(gpu.errors[i])), 1) << what << " iteration " << i;
    ASSERT_EQ(cpu.tensor.w_q.size(), gpu.tensor.w_q.size()) << what;
    size_t bad = 0;
    for (size_t i = 0; i < cpu.tensor.w_q.size(); ++i) bad += cpu.tensor.w_q[i] != gpu.tensor.w_q[i];
    EXPECT_EQ(bad, 0u) << what << ": packed code bytes differ";
    ASSERT_EQ(cpu.tensor.scale.size(), gpu.tensor.scale.size());
    int64_t worst = 0, n_diff = 0;
    for (size_t g = 0; g < cpu.tensor.scale.size(); ++g) {
        const int64_t ds = ulp_distance(cpu.tensor.scale[g], gpu.tensor.scale[g]);
        const int64_t dz = ulp_distance(cpu.tensor.zero[g], gpu.tensor.zero[g]);
        worst = std::max({worst, ds, dz});
        n_diff += (ds != 0) + (dz != 0);
    }
    EXPECT_LE(worst, 1) << what;
    if (n_diff) std::printf("  %s: %lld scale/zero values differ by 1 ulp\n", what.c_str(), (long long)n_diff);
}

TEST_F(HqqCuda, MatchesCpuSolver) {
    const Case cases[] = {
        {256, 512, 4, 64, 1, 3.0f, 0.02f, DType::kF32, DType::kF32},    // hqq default, heavy tails
        {128, 384, 3, 128, 1, 2.5f, 0.02f, DType::kBF16, DType::kF32},  // 3-bit rows padded (384 -> 390)
        {64, 1000, 2, 50, 1, 3.0f, 0.02f, DType::kF32, DType::kF32},    // group not a multiple of 4 (tail)
        {512, 256, 4, 64, 0, 3.0f, 0.02f, DType::kF16, DType::kF32},    // axis 0
        {256, 256, 1, 32, 1, 0.0f, 1.0f, DType::kF32, DType::kF32},     // 1-bit, big |d|: lp shrink taken
        {256, 256, 2, 16, 0, 2.0f, 0.5f, DType::kF32, DType::kF32},     // axis 0 with shrink, very heavy tails
        {384, 256, 8, 128, 1, 3.0f, 0.02f, DType::kF16, DType::kF16},   // 8 bit, f16 meta
        {1024, 1024, 4, 64, 1, 3.0f, 0.02f, DType::kBF16, DType::kF16}, // the model path: bf16 in, f16 meta
        {128, 640, 3, 64, 0, 3.0f, 0.3f, DType::kBF16, DType::kF32},    // 3-bit axis 0 (64 -> 70 rows), shrink
        {64, 4096, 2, 4096, 1, 3.0f, 2.0f, DType::kF32, DType::kF32},   // one long group per row, shrink
    };
    uint32_t seed = 100;
    for (const Case& c : cases) {
        std::vector<float> w;
        std::vector<uint16_t> h;
        make_weights(c, seed++, &w, &h);
        scheme::hqq::HqqParams p;
        p.nbits = c.nbits;
        p.group_size = c.group;
        p.axis = c.axis;
        p.meta_dtype = c.meta;
        for (int variant = 0; variant < 2; ++variant) {
            HqqOptions o;
            if (variant == 1) { // hqq 0.2.8's kappa and a round_zero opposite to the default
                o.kappa = 1.0;
                o.round_zero = c.nbits != 4;
            }
            const Shape shape{c.rows, c.cols};
            auto cpu = quantize_hqq(w.data(), shape, p, o);
            ASSERT_TRUE(cpu.ok()) << cpu.error().message;
            const void* in = c.in == DType::kF32 ? static_cast<const void*>(w.data()) : h.data();
            auto gpu = solver_->quantize(in, c.in, shape, p, o);
            ASSERT_TRUE(gpu.ok()) << gpu.error().message;
            const std::string what = name(c) + (variant ? " kappa 1" : "");
            expect_same(*cpu, *gpu, what);
            std::printf("  %-70s %zu iterations, err %.6g\n", what.c_str(), gpu->errors.size(),
                        gpu->errors.empty() ? 0.0 : gpu->errors.back());
        }
    }
}

TEST_F(HqqCuda, NoOptimizeAndLongRuns) {
    const Case c{256, 512, 4, 64, 1, 3.0f, 0.02f, DType::kF32, DType::kF32};
    std::vector<float> w;
    std::vector<uint16_t> h;
    make_weights(c, 7, &w, &h);
    scheme::hqq::HqqParams p;
    p.meta_dtype = DType::kF32;
    for (int iters : {0, 1, 3, 200}) {
        HqqOptions o;
        o.optimize = iters > 0;
        o.iters = std::max(iters, 1);
        o.kappa = 1.05;
        auto cpu = quantize_hqq(w.data(), Shape{c.rows, c.cols}, p, o);
        auto gpu = solver_->quantize(w.data(), DType::kF32, Shape{c.rows, c.cols}, p, o);
        ASSERT_TRUE(cpu.ok() && gpu.ok());
        expect_same(*cpu, *gpu, "iters " + std::to_string(iters));
    }
}

TEST_F(HqqCuda, AlgoRowGivesTheCpuRecords) {
    const Case c{512, 1024, 4, 64, 1, 3.0f, 0.02f, DType::kBF16, DType::kF16};
    std::vector<float> w;
    std::vector<uint16_t> h;
    make_weights(c, 21, &w, &h);
    for (int bits : {4, 3, 2}) {
        SchemeParams sp;
        sp.bits = bits;
        sp.group_size = 64;
        sp.round_zero = bits == 4;
        auto cpu = quantize_hqq_weights(h.data(), DType::kBF16, c.rows, c.cols, sp, HqqDevice::kCpu);
        auto gpu = quantize_hqq_weights(h.data(), DType::kBF16, c.rows, c.cols, sp, HqqDevice::kCuda);
        ASSERT_TRUE(cpu.ok()) << cpu.error().message;
        ASSERT_TRUE(gpu.ok()) << gpu.error().message;
        ASSERT_EQ(cpu->records.size(), gpu->records.size());
        for (size_t i = 0; i < cpu->records.size(); ++i) {
            EXPECT_EQ(cpu->records[i].suffix, gpu->records[i].suffix);
            EXPECT_TRUE(cpu->records[i].bytes == gpu->records[i].bytes)
                << bits << "-bit record " << cpu->records[i].suffix;
        }
        EXPECT_EQ(cpu->report.n_iters, gpu->report.n_iters);
        EXPECT_NEAR(cpu->report.rmse, gpu->report.rmse, 1e-9 * cpu->report.rmse);
        EXPECT_NEAR(cpu->report.rel_rmse, gpu->report.rel_rmse, 1e-9 * cpu->report.rel_rmse);
        EXPECT_DOUBLE_EQ(cpu->report.max_abs_err, gpu->report.max_abs_err);
        EXPECT_DOUBLE_EQ(cpu->report.bits_per_weight, gpu->report.bits_per_weight);
    }
}

TEST_F(HqqCuda, RejectsNonFiniteAndBadParams) {
    std::vector<float> w(64 * 64, 0.01f);
    w[1234] = NAN;
    scheme::hqq::HqqParams p;
    auto r = solver_->quantize(w.data(), DType::kF32, Shape{64, 64}, p, HqqOptions{});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_NE(r.error().message.find("weight element 1234 is nan"), std::string::npos) << r.error().message;
    w[1234] = 0.5f; // the solver is usable after an error
    EXPECT_TRUE(solver_->quantize(w.data(), DType::kF32, Shape{64, 64}, p, HqqOptions{}).ok());
    p.group_size = 48;
    EXPECT_EQ(solver_->quantize(w.data(), DType::kF32, Shape{64, 64}, p, HqqOptions{}).error().code, ErrorCode::kUsage);
    p.group_size = 64;
    EXPECT_EQ(solver_->quantize(w.data(), DType::kI32, Shape{64, 64}, p, HqqOptions{}).error().code, ErrorCode::kUsage);
}

} // namespace
} // namespace lowbit::quantize::hqq
