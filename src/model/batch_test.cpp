// SPDX-License-Identifier: MIT
// The runtime shape (batch.h, kv_cache.h): several sequences in one forward step give each sequence the logits
// it gets alone; slots are independent (clear, truncate, copy_prefix); f16 / q8_0 caches stay close to f32;
// batch rules and cache sizes are checked with messages.
#include "model/arch/arch_list.h"
#include "model/memory_store.h"
#include "model/transformer.h"

#include <cmath>
#include <gtest/gtest.h>

namespace lowbit::model {
namespace {

format::ModelConfig tiny_config() {
    format::ModelConfig c;
    c.arch = "llama";
    c.vocab_size = 61, c.hidden_size = 128, c.intermediate_size = 96, c.n_layers = 2; // head_dim 32 (q8_0 rows)
    c.n_heads = 4, c.n_kv_heads = 2, c.max_position_embeddings = 128, c.rope_theta = 10000.0f;
    return c;
}

std::unique_ptr<Transformer> build(kernel::Backend be = kernel::Backend::kCpu) {
    const auto c = tiny_config();
    auto store = make_synthetic_model(c, *find_arch(c.arch), SourceFormat::kHf, DType::kF32, 99);
    EXPECT_TRUE(store.ok()) << store.error().message;
    auto t = Transformer::create(*store, c, SourceFormat::kHf, be);
    EXPECT_TRUE(t.ok()) << t.error().message;
    return std::move(t).value();
}

std::vector<int32_t> tokens_of(int64_t n, int64_t salt, int64_t vocab) {
    std::vector<int32_t> t(size_t(n), 0);
    for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t((i * 29 + salt * 13 + 3) % vocab);
    return t;
}

double rel_err(const float* a, const float* b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; ++i) num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), den += double(b[i]) * b[i];
    return std::sqrt(num / den);
}

KvCache cache_of(const Transformer& t, int64_t n_seq, DType type, int64_t n_ctx = 64) {
    KvCacheOptions o;
    o.n_ctx = n_ctx, o.n_seq = n_seq, o.type = type;
    auto c = t.make_cache(o);
    EXPECT_TRUE(c.ok()) << c.error().message;
    return std::move(c).value();
}

// Logits of every token of one sequence run alone (slot 0 of its own cache), prefill then decode.
std::vector<float> alone(Transformer& t, const std::vector<int32_t>& toks, int64_t n_prefill, DType type,
                         ThreadPool* pool) {
    const int64_t v = t.config().vocab_size, n = int64_t(toks.size());
    auto cache = cache_of(t, 1, type);
    std::vector<float> out(size_t(n * v));
    t.forward(std::span(toks).first(size_t(n_prefill)), 0, cache, true, out.data(), pool);
    for (int64_t i = n_prefill; i < n; ++i)
        t.forward(std::span(toks).subspan(size_t(i), 1), i, cache, true, out.data() + i * v, pool);
    return out;
}

// Three sequences of different lengths: prompts in one mixed batch, then decode steps where all advance together
// (one token each per step), as a continuous-batching server does. Each sequence's logits equal its solo run.
TEST(Batch, SequencesTogetherEqualSequencesAlone) {
    ThreadPool pool(2);
    for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0}) {
        auto t = build();
        const int64_t v = t->config().vocab_size;
        const std::vector<int64_t> prefill = {7, 3, 11}, total = {12, 8, 16};
        std::vector<std::vector<int32_t>> toks;
        for (size_t s = 0; s < 3; ++s) toks.push_back(tokens_of(total[s], int64_t(s), v));
        auto cache = cache_of(*t, 3, type);
        std::vector<std::vector<float>> got(3);
        for (size_t s = 0; s < 3; ++s) got[s].assign(size_t(total[s] * v), 0.0f);
        Batch b;
        for (size_t s = 0; s < 3; ++s)
            for (int64_t i = 0; i < prefill[s]; ++i) b.add(toks[s][size_t(i)], int32_t(i), int32_t(s), true);
        ASSERT_TRUE(t->validate_batch(b, cache).ok());
        std::vector<float> logits(size_t(b.n_logits() * v));
        t->forward(b, cache, logits.data(), &pool);
        for (int64_t r = 0; r < b.size(); ++r)
            std::copy_n(logits.data() + r * v, v, got[size_t(b.seq[size_t(r)])].data() + b.pos[size_t(r)] * v);
        for (size_t s = 0; s < 3; ++s) EXPECT_EQ(cache.seq_len(int64_t(s)), prefill[s]);
        for (int64_t step = 0;; ++step) {
            b.clear();
            for (size_t s = 0; s < 3; ++s)
                if (prefill[s] + step < total[s])
                    b.add(toks[s][size_t(prefill[s] + step)], int32_t(prefill[s] + step), int32_t(s), true);
            if (b.size() == 0) break;
            ASSERT_TRUE(t->validate_batch(b, cache).ok());
            logits.assign(size_t(b.size() * v), 0.0f);
            t->forward(b, cache, logits.data(), &pool);
            for (int64_t r = 0; r < b.size(); ++r)
                std::copy_n(logits.data() + r * v, v, got[size_t(b.seq[size_t(r)])].data() + b.pos[size_t(r)] * v);
        }
        for (size_t s = 0; s < 3; ++s) {
            const auto want = alone(*t, toks[s], prefill[s], type, &pool);
            // Only the GEMM/GEMV split of the matmuls differs (m rows together vs alone): f32 rounding.
            EXPECT_LT(rel_err(got[s].data(), want.data(), total[s] * v), 2e-4) << dtype_name(type) << " seq " << s;
        }
    }
}

// Decode steps of 16 sequences on packed weights (the types of Q4_K_M, Q4_0, Q8_0) give each sequence the same
// bits as decoding it alone: up to 32 activation rows every matmul takes the integer dots (matmul_qdot.cpp), whose
// per-row arithmetic does not depend on how many rows share a pass, and everything else is per token.
TEST(Batch, PackedDecodeOf16SequencesIsBitIdenticalToEachAlone) {
    ThreadPool pool(2);
    format::ModelConfig c = tiny_config();
    c.hidden_size = 256, c.intermediate_size = 512, c.n_heads = 4, c.n_kv_heads = 2; // k-quant rows: K % 256 == 0
    for (DType dtype : {DType::kQ4_K, DType::kQ6_K, DType::kQ4_0, DType::kQ8_0}) {
        auto store = make_synthetic_model(c, *find_arch(c.arch), SourceFormat::kHf, dtype, 7);
        ASSERT_TRUE(store.ok()) << store.error().message;
        auto made = Transformer::create(*store, c, SourceFormat::kHf, kernel::Backend::kCpu);
        ASSERT_TRUE(made.ok()) << made.error().message;
        Transformer& t = **made;
        const int64_t v = c.vocab_size, n_seq = 16, n_prefill = 3, n_total = 7;
        std::vector<std::vector<int32_t>> toks;
        for (int64_t s = 0; s < n_seq; ++s) toks.push_back(tokens_of(n_total, s, v));
        auto cache = cache_of(t, n_seq, DType::kF16);
        std::vector<float> logits(size_t(n_seq * v));
        Batch b;
        for (int64_t s = 0; s < n_seq; s += 4) { // prompts 4 sequences (12 tokens) per step
            b.clear();
            for (int64_t q = s; q < s + 4; ++q)
                for (int64_t i = 0; i < n_prefill; ++i)
                    b.add(toks[size_t(q)][size_t(i)], int32_t(i), int32_t(q), false);
            ASSERT_TRUE(t.validate_batch(b, cache).ok());
            t.forward(b, cache, logits.data(), &pool);
        }
        std::vector<std::vector<float>> got(static_cast<size_t>(n_seq));
        for (int64_t i = n_prefill; i < n_total; ++i) {
            b.clear();
            for (int64_t s = 0; s < n_seq; ++s) b.add(toks[size_t(s)][size_t(i)], int32_t(i), int32_t(s), true);
            ASSERT_TRUE(t.validate_batch(b, cache).ok());
            t.forward(b, cache, logits.data(), &pool);
            for (int64_t s = 0; s < n_seq; ++s)
                got[size_t(s)].insert(got[size_t(s)].end(), logits.begin() + s * v, logits.begin() + (s + 1) * v);
        }
        for (int64_t s = 0; s < n_seq; ++s) {
            const auto want = alone(t, toks[size_t(s)], n_prefill, DType::kF16, &pool);
            const std::vector<float> want_decode(want.begin() + n_prefill * v, want.end());
            ASSERT_EQ(got[size_t(s)].size(), want_decode.size());
            int64_t differ = 0;
            for (size_t e = 0; e < want_decode.size(); ++e) differ += got[size_t(s)][e] != want_decode[e];
            EXPECT_EQ(differ, 0) << dtype_name(dtype) << " seq " << s;
        }
    }
}

// f16 and q8_0 cache rows against the f32 cache on the same tokens (the bound is what the row rounding costs).
TEST(Batch, ReducedCacheTypesStayCloseToF32) {
    ThreadPool pool(2);
    auto t = build();
    const auto toks = tokens_of(40, 5, t->config().vocab_size);
    const auto f32 = alone(*t, toks, 24, DType::kF32, &pool);
    const int64_t n = int64_t(f32.size());
    const double e16 = rel_err(alone(*t, toks, 24, DType::kF16, &pool).data(), f32.data(), n);
    const double e8 = rel_err(alone(*t, toks, 24, DType::kQ8_0, &pool).data(), f32.data(), n);
    EXPECT_GT(e16, 0.0);
    EXPECT_LT(e16, 2e-3);
    EXPECT_LT(e8, 2e-2);
    EXPECT_LT(e16, e8);
}

// The ref back end's kv_attention is ref::attention's arithmetic: an f32 cache reproduces ref's old logits.
TEST(Batch, CpuAndRefAgreeOnEveryCacheType) {
    ThreadPool pool(2);
    auto fast = build(kernel::Backend::kCpu), ref = build(kernel::Backend::kRef);
    const auto toks = tokens_of(21, 2, fast->config().vocab_size);
    for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0}) {
        const auto a = alone(*fast, toks, 13, type, &pool), b = alone(*ref, toks, 13, type, nullptr);
        // f32 math vs double math; a reduced cache can round a K/V row the other way: 1e-4.
        EXPECT_LT(rel_err(a.data(), b.data(), int64_t(a.size())), 1e-4) << dtype_name(type);
    }
}

// A shared prompt evaluated once in slot 0 and copied into slot 1 continues exactly as a fresh evaluation;
// truncating a slot and re-evaluating reproduces the logits; clearing one slot leaves the other intact.
TEST(Batch, SlotPrefixCopyTruncateAndClear) {
    ThreadPool pool(2);
    auto t = build();
    const int64_t v = t->config().vocab_size;
    const auto sys = tokens_of(9, 7, v);
    auto tail_a = tokens_of(4, 8, v), tail_b = tokens_of(5, 9, v);
    auto cache = cache_of(*t, 2, DType::kF16);
    std::vector<float> scratch(size_t(16 * v)), b(static_cast<size_t>(v));
    t->forward(sys, 0, cache, false, scratch.data(), &pool);
    ASSERT_TRUE(cache.copy_prefix(0, 1, 9).ok());
    EXPECT_EQ(cache.seq_len(1), 9);
    Batch batch;
    for (size_t i = 0; i < tail_a.size(); ++i) batch.add(tail_a[i], int32_t(9 + i), 0, i + 1 == tail_a.size());
    for (size_t i = 0; i < tail_b.size(); ++i) batch.add(tail_b[i], int32_t(9 + i), 1, i + 1 == tail_b.size());
    ASSERT_TRUE(t->validate_batch(batch, cache).ok());
    std::vector<float> two(size_t(2 * v));
    t->forward(batch, cache, two.data(), &pool);
    for (int which = 0; which < 2; ++which) {
        auto full = sys;
        const auto& tail = which == 0 ? tail_a : tail_b;
        full.insert(full.end(), tail.begin(), tail.end());
        auto fresh = cache_of(*t, 1, DType::kF16);
        std::vector<float> want(static_cast<size_t>(v));
        t->forward(full, 0, fresh, false, want.data(), &pool);
        EXPECT_LT(rel_err(two.data() + which * v, want.data(), v), 1e-4) << which; // GEMM vs GEMV rounding
    }
    // Truncate slot 1 back to the shared prompt and run tail_a there: slot 0's answer.
    cache.truncate(1, 9);
    EXPECT_EQ(cache.seq_len(1), 9);
    batch.clear();
    for (size_t i = 0; i < tail_a.size(); ++i) batch.add(tail_a[i], int32_t(9 + i), 1, i + 1 == tail_a.size());
    t->forward(batch, cache, b.data(), &pool);
    EXPECT_LT(rel_err(b.data(), two.data(), v), 1e-4);
    cache.clear(1);
    EXPECT_EQ(cache.seq_len(1), 0);
    EXPECT_EQ(cache.seq_len(0), 13);
    EXPECT_FALSE(cache.copy_prefix(0, 2, 1).ok());
    EXPECT_FALSE(cache.copy_prefix(1, 0, 1).ok()); // slot 1 is empty now
}

TEST(Batch, RulesAreCheckedWithMessages) {
    auto t = build();
    auto cache = cache_of(*t, 2, DType::kF16, 16);
    auto expect_usage = [&](const Batch& b, const std::string& needle) {
        const Status st = t->validate_batch(b, cache);
        ASSERT_FALSE(st.ok()) << needle;
        EXPECT_EQ(st.error().code, ErrorCode::kUsage);
        EXPECT_NE(st.error().message.find(needle), std::string::npos) << st.error().message;
    };
    Batch b;
    expect_usage(b, "no tokens");
    b.add(61, 0, 0, true);
    expect_usage(b, "outside the vocabulary");
    b.clear(), b.add(1, 0, 2, true);
    expect_usage(b, "outside the cache's slots");
    b.clear(), b.add(1, 16, 0, true);
    expect_usage(b, "outside the context");
    b.clear(), b.add(1, 1, 0, true); // slot 0 is empty: the first position must be 0
    expect_usage(b, "expected at most 0");
    b.clear(), b.add(1, 0, 0, false), b.add(2, 2, 0, true); // a gap
    expect_usage(b, "expected 1");
    b.clear(), b.add(1, 0, 0, false), b.add(2, 0, 1, false), b.add(3, 1, 0, true); // interleaved slots are fine
    EXPECT_TRUE(t->validate_batch(b, cache).ok());
}

TEST(KvCache, SizesAreCheckedNotAborted) {
    KvCacheOptions o;
    o.n_ctx = int64_t(1) << 40;
    auto huge = KvCache::create(32, 8, 128, o);
    ASSERT_FALSE(huge.ok());
    EXPECT_EQ(huge.error().code, ErrorCode::kOutOfMemory);
    EXPECT_NE(huge.error().message.find("GiB"), std::string::npos) << huge.error().message;
    o.n_ctx = int64_t(1) << 62;
    auto overflow = KvCache::create(int64_t(1) << 40, 8, 128, o);
    ASSERT_FALSE(overflow.ok());
    EXPECT_NE(overflow.error().message.find("overflows"), std::string::npos) << overflow.error().message;
    o.n_ctx = 1024, o.max_bytes = 1 << 20;
    auto capped = KvCache::create(4, 8, 128, o); // 4 * 1024 * 1024 * 4 B * 2 = 32 MiB > 1 MiB
    ASSERT_FALSE(capped.ok());
    EXPECT_NE(capped.error().message.find("allowed"), std::string::npos) << capped.error().message;
    o.max_bytes = 0, o.n_ctx = 0;
    EXPECT_EQ(KvCache::create(4, 8, 128, o).error().code, ErrorCode::kUsage);
    o.n_ctx = 8, o.type = DType::kQ4_0;
    EXPECT_EQ(KvCache::create(4, 8, 128, o).error().code, ErrorCode::kUsage);
    o.type = DType::kQ8_0;
    EXPECT_EQ(KvCache::create(4, 8, 48, o).error().code, ErrorCode::kUnsupported);
    o.type = DType::kF16, o.n_seq = 3;
    auto ok = KvCache::create(4, 8, 128, o);
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(ok->bytes(), uint64_t(2 * 4 * 3 * 8 * 1024 * 2));
    EXPECT_EQ(parse_cache_type("Q8_0").value(), DType::kQ8_0);
    EXPECT_EQ(parse_cache_type("q4_0").error().code, ErrorCode::kUsage);
}

} // namespace
} // namespace lowbit::model
