// SPDX-License-Identifier: MIT
// Tests of the core room: f16/bf16 exactness, dtype table, checked math, Result, thread pool, files.
#include "core/checked.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/file.h"
#include "core/half.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <gtest/gtest.h>
#include <limits>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace lowbit {
namespace {

// Reference f16 rounding via double arithmetic: nearest representable, ties to even mantissa.
uint16_t ref_f32_to_f16(float f) {
    if (std::isnan(f)) return 0x7e00;
    uint16_t best = 0;
    double best_err = INFINITY;
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    const double a = std::fabs(double(f));
    if (a >= 65520.0) return sign | 0x7c00;
    for (uint32_t h = 0; h < 0x7c00; ++h) {
        const double v = f16_to_f32(static_cast<uint16_t>(h));
        const double err = std::fabs(v - a);
        if (err < best_err || (err == best_err && (h & 1) == 0)) {
            best_err = err;
            best = static_cast<uint16_t>(h);
        }
    }
    return sign | best;
}

TEST(Half, F16RoundTripAllBitPatterns) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float f = f16_to_f32(static_cast<uint16_t>(h));
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
            continue;
        }
        ASSERT_EQ(f32_to_f16(f), h) << "h=" << h;
    }
}

TEST(Half, F16RoundsToNearestEven) {
    std::mt19937 rng(1);
    std::uniform_int_distribution<int> exp_dist(-26, 16);
    std::uniform_real_distribution<float> mant(1.0f, 2.0f);
    for (int i = 0; i < 300; ++i) {
        const float f = std::ldexp(mant(rng), exp_dist(rng)) * (i % 2 ? -1.f : 1.f);
        ASSERT_EQ(f32_to_f16(f), ref_f32_to_f16(f)) << f;
    }
    // Exact ties: 1 + 2^-11 lies halfway between 1 and 1+2^-10 -> even (1.0).
    EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
    EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
    EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00); // rounds to Inf
    EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
    EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7c00);
    EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
    EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001); // smallest subnormal
    EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000); // tie to even -> 0
    EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
}

TEST(Half, BF16) {
    EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
    // 1 + 2^-8 is a tie between 1 and 1+2^-7 -> even (1.0); 1 + 3*2^-8 -> 1 + 2^-6.
    EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
    EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
    EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
    for (uint32_t b = 0; b < 0x10000; ++b) {
        const float f = bf16_to_f32(static_cast<uint16_t>(b));
        if (!std::isnan(f)) {
            ASSERT_EQ(f32_to_bf16(f), b);
        }
    }
}

TEST(DType, TableAndIds) {
    EXPECT_EQ(dtype_block_bytes(DType::kQ4_K), 144);
    EXPECT_EQ(dtype_block_elems(DType::kQ4_K), 256);
    EXPECT_EQ(dtype_from_ggml(12), DType::kQ4_K);
    EXPECT_EQ(dtype_from_ggml(30), DType::kBF16);
    EXPECT_FALSE(dtype_from_ggml(31).has_value());
    EXPECT_EQ(dtype_from_safetensors("BF16"), DType::kBF16);
    EXPECT_EQ(dtype_from_name("Q6_K"), DType::kQ6_K);
    EXPECT_DOUBLE_EQ(dtype_bpw(DType::kQ4_0), 4.5);
    EXPECT_EQ(dtype_row_bytes(DType::kQ8_0, 64), 68u);
    EXPECT_FALSE(dtype_row_bytes(DType::kQ8_0, 33).has_value());
    for (int i = 0; i < static_cast<int>(DType::kCount); ++i) EXPECT_EQ(dtype_traits(DType(i)).dtype, DType(i));
}

TEST(Checked, Overflow) {
    EXPECT_FALSE(checked_mul(1ull << 40, 1ull << 30).has_value());
    EXPECT_EQ(checked_mul(3, 5), 15u);
    EXPECT_FALSE(checked_add(~0ull, 1).has_value());
    EXPECT_EQ(checked_align_up(33, 32), 64u);
    EXPECT_FALSE(checked_align_up(~0ull - 1, 32).has_value());
    std::vector<int64_t> dims{-1, 4};
    EXPECT_FALSE(checked_product(dims.begin(), dims.end()).has_value());
}

Result<int> half_of(int x) {
    if (x % 2) return make_error(ErrorCode::kBadInput, "odd");
    return x / 2;
}
Result<int> quarter_of(int x) {
    LOWBIT_ASSIGN_OR_RETURN(int h, half_of(x));
    LOWBIT_ASSIGN_OR_RETURN(int q, half_of(h));
    return q;
}

TEST(Result, PropagatesErrors) {
    EXPECT_EQ(*quarter_of(8), 2);
    auto r = quarter_of(6);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_EQ(exit_code_for(ErrorCode::kUnsupported), 4);
    EXPECT_EQ(exit_code_for(ErrorCode::kIo), 1);
}

TEST(ThreadPool, CoversRangeExactlyOnce) {
    ThreadPool pool(3);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
        std::vector<int> hits(static_cast<size_t>(n), 0);
        pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
            for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        });
        for (int h : hits) ASSERT_EQ(h, 1);
    }
}

// Chunks are claimed, not assigned: the same boundaries whoever runs them, every item once even when a worker
// is slow to start (the caller takes its chunks) or one chunk stalls, and thousands of back-to-back jobs (a
// decode step's ~100) never lose a wake-up or let a late worker run a finished job.
TEST(ThreadPool, ClaimedChunksCoverEachItemOnceWithFixedBoundaries) {
    ThreadPool pool(3);
    std::mutex mu;
    for (int64_t tile : {1, 5, 16}) {
        const int64_t n = 103;
        std::vector<int> hits(static_cast<size_t>(n), 0);
        std::vector<std::pair<int64_t, int64_t>> chunks;
        pool.parallel_for_tiles(
            n,
            [&](int64_t b, int64_t e, int t) {
                EXPECT_TRUE(t >= 0 && t < 3);
                if (b == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20)); // one slow chunk
                std::lock_guard<std::mutex> lock(mu);
                chunks.emplace_back(b, e);
                for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
            },
            tile);
        for (int h : hits) ASSERT_EQ(h, 1);
        std::sort(chunks.begin(), chunks.end());
        ASSERT_EQ(int64_t(chunks.size()), (n + tile - 1) / tile);
        for (size_t c = 0; c < chunks.size(); ++c)
            EXPECT_EQ(chunks[c], std::make_pair(int64_t(c) * tile, std::min(n, int64_t(c + 1) * tile))) << tile;
    }
    std::atomic<int64_t> sum{0};
    for (int job = 0; job < 5000; ++job)
        pool.parallel_for(6, [&](int64_t b, int64_t e, int) {
            for (int64_t i = b; i < e; ++i) sum += i + job;
        });
    int64_t want = 0;
    for (int job = 0; job < 5000; ++job) want += 15 + 6 * job;
    EXPECT_EQ(sum.load(), want);
}

TEST(Files, AtomicWriteAndMap) {
    const std::string path = testing::TempDir() + "/lowbit_core_test.bin";
    {
        auto w = AtomicWriter::create(path);
        ASSERT_TRUE(w.ok());
        ASSERT_TRUE((*w)->write("abc").ok());
        ASSERT_TRUE((*w)->write_zeros(5).ok());
        EXPECT_FALSE(file_exists(path)); // not visible before commit
        ASSERT_TRUE((*w)->commit().ok());
    }
    auto m = MappedFile::open(path);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ((*m)->size(), 8u);
    EXPECT_EQ((*m)->data()[1], 'b');
    auto missing = MappedFile::open(path + ".nope");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, ErrorCode::kIo);
    std::remove(path.c_str());
}

TEST(Tensor, ContiguousBlockStrides) {
    TensorView v = TensorView::contiguous(nullptr, DType::kQ4_0, Shape{3, 64});
    EXPECT_EQ(v.n_bytes(), 3u * 2 * 18);
    EXPECT_EQ(v.strides_bytes[0], 36);
    EXPECT_TRUE(v.is_contiguous());
    EXPECT_EQ(v.shape.to_string(), "[3, 64]");
}

} // namespace
} // namespace lowbit
