// SPDX-License-Identifier: MIT
// Device selection of the HQQ row (runs everywhere): --device names, auto/cpu/cuda resolution, and the clear
// refusal of the CUDA solver where the build or the machine has none (the GPU comparison is hqq_cuda_gputest).
#include "core/half.h"
#include "quantize/hqq/hqq_algo.h"
#include "quantize/hqq/hqq_cuda.h"

#include <gtest/gtest.h>
#include <random>

namespace lowbit::quantize::hqq {
namespace {

TEST(HqqDevice, ParsesNames) {
    EXPECT_EQ(*parse_hqq_device("auto"), HqqDevice::kAuto);
    EXPECT_EQ(*parse_hqq_device("cpu"), HqqDevice::kCpu);
    EXPECT_EQ(*parse_hqq_device("cuda"), HqqDevice::kCuda);
    auto bad = parse_hqq_device("gpu");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, ErrorCode::kUsage);
    EXPECT_NE(bad.error().message.find("'gpu'"), std::string::npos) << bad.error().message;
    EXPECT_STREQ(hqq_device_name(HqqDevice::kCuda), "cuda");
}

TEST(HqqDevice, ResolvesByAvailability) {
    EXPECT_EQ(*resolve_hqq_device(HqqDevice::kCpu), HqqDevice::kCpu);
    const bool usable = hqq_cuda_available().ok();
    EXPECT_EQ(*resolve_hqq_device(HqqDevice::kAuto), usable ? HqqDevice::kCuda : HqqDevice::kCpu);
    auto cuda = resolve_hqq_device(HqqDevice::kCuda);
    EXPECT_EQ(cuda.ok(), usable);
    if (!hqq_cuda_compiled()) {
        ASSERT_FALSE(cuda.ok());
        EXPECT_EQ(cuda.error().code, ErrorCode::kUnsupported);
        EXPECT_NE(cuda.error().message.find("--device cuda: this lowbit was built without CUDA"), std::string::npos)
            << cuda.error().message;
        EXPECT_EQ(HqqCudaSolver::create(0).error().code, ErrorCode::kUnsupported);
    } else if (!usable) {
        EXPECT_EQ(cuda.error().code, ErrorCode::kDevice);
    }
}

TEST(HqqDevice, CpuPathTakesHalfWeights) {
    // bf16/f16 weights on the CPU path equal the f32 path on the widened values, record for record.
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    const int64_t rows = 64, cols = 256;
    std::vector<uint16_t> h(size_t(rows * cols));
    std::vector<float> f(h.size());
    for (size_t i = 0; i < h.size(); ++i) {
        h[i] = uint16_t(f32_bits(nd(rng)) >> 16); // bf16 by truncation: any bf16 pattern will do
        f[i] = bf16_to_f32(h[i]);
    }
    SchemeParams sp;
    sp.bits = 3;
    sp.group_size = 64;
    auto a = quantize_hqq_weights(h.data(), DType::kBF16, rows, cols, sp, HqqDevice::kCpu);
    auto b = quantize_hqq_weights(f.data(), DType::kF32, rows, cols, sp, HqqDevice::kCpu);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->records.size(), b->records.size());
    for (size_t i = 0; i < a->records.size(); ++i) EXPECT_TRUE(a->records[i].bytes == b->records[i].bytes);
    EXPECT_EQ(a->report.n_iters, b->report.n_iters);
    EXPECT_EQ(quantize_hqq_weights(h.data(), DType::kI8, rows, cols, sp, HqqDevice::kCpu).error().code,
              ErrorCode::kUsage);
    EXPECT_EQ(quantize_hqq_weights(h.data(), DType::kBF16, rows, cols, sp, HqqDevice::kAuto).error().code,
              ErrorCode::kInternal);
    if (!hqq_cuda_compiled()) {
        EXPECT_EQ(quantize_hqq_weights(h.data(), DType::kBF16, rows, cols, sp, HqqDevice::kCuda).error().code,
                  ErrorCode::kUnsupported);
    }
}

} // namespace
} // namespace lowbit::quantize::hqq
