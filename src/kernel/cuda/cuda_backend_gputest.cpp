// SPDX-License-Identifier: MIT
// GPU smoke test (label gpu): skips cleanly without CUDA or without a device.
#include "kernel/cuda/cuda_backend.h"

#include <gtest/gtest.h>
#include <vector>

namespace lowbit::kernel::cuda {
namespace {

TEST(CudaBackend, ScaleShiftOnDevice) {
    if (!compiled_with_cuda()) GTEST_SKIP() << "built without CUDA";
    auto n = device_count();
    if (!n.ok() || *n == 0) GTEST_SKIP() << "no CUDA device: " << (n.ok() ? "0 devices" : n.error().message);
    auto info = device_info(0);
    ASSERT_TRUE(info.ok()) << info.error().message;
    std::printf("device 0: %s (sm_%d%d, %.1f GiB)\n", info->name.c_str(), info->sm_major, info->sm_minor,
                double(info->total_bytes) / (1 << 30));
    const int64_t count = 1000003; // not a multiple of the block size
    std::vector<float> x(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) x[size_t(i)] = float(i % 1000) * 0.25f - 7.0f;
    std::vector<float> expect = x;
    for (auto& v : expect) v = 3.0f * v + 0.5f;
    ASSERT_TRUE(scale_shift_f32(x.data(), count, 3.0f, 0.5f).ok());
    for (int64_t i = 0; i < count; ++i) ASSERT_EQ(x[size_t(i)], expect[size_t(i)]) << i;
}

} // namespace
} // namespace lowbit::kernel::cuda
