// SPDX-License-Identifier: MIT
// kv_attention (kernel.h): every back end's row against ref/ for each cache type, on a batch mixing slots and
// positions; an f32 cache reproduces `attention` on the same rows bit for bit (the single-sequence path's old
// results); f16 / q8_0 rows differ from f32 only by their rounding.
#include "core/half.h"
#include "kernel/cpu/cpu_ops.h"
#include "kernel/kernel_list.h"
#include "kernel/ref/ref_ops.h"
#include "scheme/scheme_list.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::kernel {
namespace {

constexpr int64_t kHeads = 8, kKvHeads = 2, kHeadDim = 32, kKvDim = kKvHeads * kHeadDim, kCtx = 24, kSeq = 3;

std::vector<float> randn(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// A cache layer [kSeq, kCtx, kKvDim] of `type` holding `rows` (f32 values of the same shape).
std::vector<uint8_t> encode(const std::vector<float>& rows, DType type) {
    const uint64_t rb = *dtype_row_bytes(type, kKvDim);
    std::vector<uint8_t> out(size_t(rb * kSeq * kCtx));
    for (int64_t r = 0; r < kSeq * kCtx; ++r) {
        const float* src = rows.data() + r * kKvDim;
        uint8_t* dst = out.data() + uint64_t(r) * rb;
        if (type == DType::kF32) {
            std::memcpy(dst, src, size_t(rb));
        } else {
            scheme::find_scheme(type)->quantize_row(src, dst, kKvDim, nullptr);
        }
    }
    return out;
}

struct Case {
    std::vector<int32_t> seq = {0, 0, 0, 2, 1, 2, 1, 0};
    std::vector<int32_t> pos = {5, 6, 7, 0, 11, 1, 12, 8};
    std::vector<float> q = randn(size_t(8 * kHeads * kHeadDim), 1);
    std::vector<float> k = randn(size_t(kSeq * kCtx * kKvDim), 2), v = randn(size_t(kSeq * kCtx * kKvDim), 3);
};

KvAttentionArgs args_of(const Case& c, const std::vector<uint8_t>& k, const std::vector<uint8_t>& v, DType type,
                        std::vector<float>& out) {
    KvAttentionArgs a;
    a.q = c.q.data(), a.out = out.data(), a.seq = c.seq.data(), a.pos = c.pos.data(), a.n_tokens = 8;
    a.k = k.data(), a.v = v.data(), a.kv_dtype = type, a.n_ctx = kCtx;
    a.n_heads = kHeads, a.n_kv_heads = kKvHeads, a.head_dim = kHeadDim, a.scale = 1.0f / std::sqrt(float(kHeadDim));
    return a;
}

double rel(const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i)
        num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), den += double(b[i]) * b[i];
    return std::sqrt(num / den);
}

TEST(KvAttention, EveryRowMatchesRefForEveryCacheType) {
    ThreadPool pool(2);
    const Case c;
    int n_checked = 0;
    for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0}) {
        ASSERT_TRUE(can_cache(type));
        const auto k = encode(c.k, type), v = encode(c.v, type);
        std::vector<float> want(c.q.size());
        ref::kv_attention(args_of(c, k, v, type, want), nullptr);
        for (const auto& row : kernel_list()) {
            if (row.op != Op::kKvAttention || row.backend == Backend::kRef) continue;
            if (row.dtype != kAnyDType && row.dtype != type) continue;
            std::vector<float> got(c.q.size(), -1.0f);
            std::get<KvAttentionFn>(row.fn)(args_of(c, k, v, type, got), &pool);
            EXPECT_LT(rel(got, want), 1e-6) << row.name << " " << dtype_name(type);
            ++n_checked;
        }
    }
    EXPECT_GE(n_checked, 3);
    EXPECT_FALSE(can_cache(DType::kQ4_0));
}

// An f32 cache through kv_attention == attention over the contiguous rows of each token's slot, bit for bit.
TEST(KvAttention, F32CacheIsBitIdenticalWithAttention) {
    const Case c;
    const auto k = encode(c.k, DType::kF32), v = encode(c.v, DType::kF32);
    for (Backend be : {Backend::kCpu, Backend::kRef}) {
        std::vector<float> got(c.q.size()), want(c.q.size());
        kv_attention(Exec{be, nullptr}, args_of(c, k, v, DType::kF32, got));
        for (size_t t = 0; t < c.seq.size(); ++t) {
            AttentionArgs a;
            a.q = c.q.data() + t * kHeads * kHeadDim, a.out = want.data() + t * kHeads * kHeadDim;
            a.k = c.k.data() + c.seq[t] * kCtx * kKvDim, a.v = c.v.data() + c.seq[t] * kCtx * kKvDim;
            a.n_tokens = 1, a.n_past = c.pos[t], a.n_heads = kHeads, a.n_kv_heads = kKvHeads, a.head_dim = kHeadDim;
            a.scale = 1.0f / std::sqrt(float(kHeadDim));
            attention(Exec{be, nullptr}, a);
        }
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << backend_name(be);
    }
}

// Reduced cache rows cost what their rounding costs: f16 ~1e-3 relative, q8_0 ~1e-2.
TEST(KvAttention, ReducedTypesAreCloseToF32) {
    const Case c;
    std::vector<float> f32(c.q.size()), f16(c.q.size()), q8(c.q.size());
    const auto k32 = encode(c.k, DType::kF32), v32 = encode(c.v, DType::kF32);
    const auto k16 = encode(c.k, DType::kF16), v16 = encode(c.v, DType::kF16);
    const auto k8 = encode(c.k, DType::kQ8_0), v8 = encode(c.v, DType::kQ8_0);
    kv_attention(Exec{}, args_of(c, k32, v32, DType::kF32, f32));
    kv_attention(Exec{}, args_of(c, k16, v16, DType::kF16, f16));
    kv_attention(Exec{}, args_of(c, k8, v8, DType::kQ8_0, q8));
    EXPECT_LT(rel(f16, f32), 2e-3);
    EXPECT_LT(rel(q8, f32), 2e-2);
    EXPECT_GT(rel(q8, f32), rel(f16, f32));
}

} // namespace
} // namespace lowbit::kernel
