// SPDX-License-Identifier: MIT
// Perplexity protocols on a closed-form fake model against brute-force recomputations written here
// independently (whole windows, no batching, no KV cache): llama.cpp chunks with BOS replacement and
// second-half scoring, and Hugging Face's strided loop with -100 label masking.
#include "pipeline/perplexity/fake_model_for_test.h"
#include "pipeline/perplexity/perplexity.h"

#include <cmath>
#include <gtest/gtest.h>

namespace lowbit::pipeline {
namespace {

using testing::fake_logits;
using testing::fake_tokens;
using testing::FakeLanguageModel;

constexpr int64_t kVocab = 37;

// -log softmax(row)[target], with the row rounded to float first as the model delivers it.
double nll_brute(const std::vector<double>& row, int32_t target) {
    double mx = -1e300;
    for (double v : row) mx = std::max(mx, double(float(v)));
    double s = 0;
    for (double v : row) s += std::exp(double(float(v)) - mx);
    return mx + std::log(s) - double(float(row[size_t(target)]));
}

struct Brute {
    double nll = 0, nll2 = 0;
    int64_t n = 0;
    void add(double v) {
        nll += v;
        nll2 += v * v;
        ++n;
    }
    double ppl() const { return std::exp(nll / n); }
    double stderr_ppl() const {
        const double m = nll / n, var = nll2 / n - m * m;
        return std::sqrt(var / (n - 1)) * ppl();
    }
};

Brute brute_chunked(const std::vector<int32_t>& tokens, int64_t ctx, int64_t n_chunks, int32_t bos) {
    Brute b;
    for (int64_t c = 0; c < n_chunks; ++c) {
        std::vector<int32_t> w(tokens.begin() + c * ctx, tokens.begin() + (c + 1) * ctx);
        if (bos >= 0) w[0] = bos;
        for (int64_t j = ctx / 2; j < ctx - 1; ++j) b.add(nll_brute(fake_logits(w, j, kVocab, 0), w[size_t(j + 1)]));
    }
    return b;
}

// transformers docs, "Perplexity of fixed-length models", transcribed literally.
Brute brute_hf(const std::vector<int32_t>& ids, int64_t max_length, int64_t stride) {
    Brute b;
    const int64_t seq_len = static_cast<int64_t>(ids.size());
    int64_t prev_end_loc = 0;
    for (int64_t begin_loc = 0; begin_loc < seq_len; begin_loc += stride) {
        const int64_t end_loc = std::min(begin_loc + max_length, seq_len);
        const int64_t trg_len = end_loc - prev_end_loc;
        std::vector<int32_t> input(ids.begin() + begin_loc, ids.begin() + end_loc);
        std::vector<int32_t> labels = input;
        for (int64_t k = 0; k < static_cast<int64_t>(labels.size()) - trg_len; ++k) labels[size_t(k)] = -100;
        for (size_t k = 1; k < labels.size(); ++k) // shift: logits at k-1 predict labels[k]
            if (labels[k] != -100) b.add(nll_brute(fake_logits(input, int64_t(k) - 1, kVocab, 0), labels[k]));
        prev_end_loc = end_loc;
        if (end_loc == seq_len) break;
    }
    return b;
}

TEST(Perplexity, ChunkedMatchesBruteForceWithBosReplacement) {
    const auto tokens = fake_tokens(16 * 5 + 7, kVocab); // 5 full chunks and a partial one (ignored)
    FakeLanguageModel model(kVocab, 64);
    PerplexityOptions o;
    o.n_ctx = 16;
    o.bos_id = 1;
    std::vector<double> seen;
    auto r = compute_perplexity(model, tokens, o, [&](const ChunkReport& c) { seen.push_back(c.running_ppl); });
    ASSERT_TRUE(r.ok()) << r.error().message;
    const Brute b = brute_chunked(tokens, 16, 5, 1);
    EXPECT_EQ(r->n_chunks, 5);
    EXPECT_EQ(r->n_scored, 5 * 7); // n_ctx - 1 - n_ctx/2 per chunk
    EXPECT_EQ(b.n, r->n_scored);
    EXPECT_NEAR(r->ppl, b.ppl(), 1e-9 * b.ppl());
    EXPECT_NEAR(r->ppl_stderr, b.stderr_ppl(), 1e-9 * b.ppl());
    ASSERT_EQ(seen.size(), 5u);
    EXPECT_NEAR(seen.back(), r->ppl, 1e-12);
    EXPECT_NEAR(seen.front(), brute_chunked(tokens, 16, 1, 1).ppl(), 1e-9);

    // Without BOS replacement the first token stays, and the fake model notices (every row depends on it).
    FakeLanguageModel model2(kVocab, 64);
    o.bos_id = -1;
    auto r2 = compute_perplexity(model2, tokens, o);
    ASSERT_TRUE(r2.ok());
    EXPECT_NEAR(r2->ppl, brute_chunked(tokens, 16, 5, -1).ppl(), 1e-9 * r2->ppl);
    EXPECT_GT(std::fabs(r2->ppl - r->ppl), 1e-6);
}

TEST(Perplexity, OddContextAndBatchSizesDoNotChangeTheResult) {
    const auto tokens = fake_tokens(200, kVocab, 3);
    const Brute b = brute_chunked(tokens, 13, 4, 2);
    for (int64_t n_batch : {1, 2, 5, 6, 7, 13, 512}) {
        FakeLanguageModel model(kVocab, 13);
        PerplexityOptions o;
        o.n_ctx = 13;
        o.n_batch = n_batch;
        o.n_chunks = 4;
        o.bos_id = 2;
        auto r = compute_perplexity(model, tokens, o);
        ASSERT_TRUE(r.ok()) << r.error().message;
        EXPECT_EQ(r->n_chunks, 4);
        EXPECT_EQ(r->n_scored, 4 * (13 - 1 - 6));
        EXPECT_NEAR(r->ppl, b.ppl(), 1e-9 * b.ppl()) << "n_batch " << n_batch;
        EXPECT_EQ(model.n_eval_calls, 4 * ((13 + n_batch - 1) / n_batch));
    }
}

TEST(Perplexity, StridedMatchesHuggingFaceLoop) {
    const auto tokens = fake_tokens(71, kVocab, 5);
    struct Case {
        int64_t ctx, stride;
    };
    for (Case c : {Case{16, 16}, Case{16, 8}, Case{16, 5}, Case{16, 1}, Case{80, 4}, Case{10, 3}}) {
        FakeLanguageModel model(kVocab, 128);
        PerplexityOptions o;
        o.n_ctx = c.ctx;
        o.stride = c.stride;
        o.n_batch = 7;
        o.bos_id = 0; // ignored by the strided protocol
        auto r = compute_perplexity(model, tokens, o);
        ASSERT_TRUE(r.ok()) << r.error().message;
        const Brute b = brute_hf(tokens, c.ctx, c.stride);
        EXPECT_EQ(r->n_scored, b.n) << c.ctx << "/" << c.stride;
        // With stride < ctx every token but the first is scored once; with stride == ctx each window's first
        // token has no predecessor inside the window and is skipped (5 windows: 71 - 5 = 66).
        EXPECT_EQ(r->n_scored, c.stride < c.ctx ? 70 : 66) << c.ctx << "/" << c.stride;
        EXPECT_NEAR(r->ppl, b.ppl(), 1e-9 * b.ppl()) << c.ctx << "/" << c.stride;
        EXPECT_EQ(r->n_chunks, count_chunks(71, o));
    }
}

TEST(Perplexity, ChunksCapLimitsWork) {
    const auto tokens = fake_tokens(160, kVocab);
    FakeLanguageModel model(kVocab, 16);
    PerplexityOptions o;
    o.n_ctx = 16;
    o.n_chunks = 2;
    auto r = compute_perplexity(model, tokens, o);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->n_chunks, 2);
    EXPECT_NEAR(r->ppl, brute_chunked(tokens, 16, 2, -1).ppl(), 1e-9 * r->ppl);
}

TEST(Perplexity, BadInputsGiveClearErrors) {
    FakeLanguageModel model(kVocab, 32);
    PerplexityOptions o;
    o.n_ctx = 16;
    auto r = compute_perplexity(model, std::vector<int32_t>{}, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_NE(r.error().message.find("empty"), std::string::npos);

    r = compute_perplexity(model, fake_tokens(31, kVocab), o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_NE(r.error().message.find("you need at least 32 tokens"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("only 31 tokens"), std::string::npos);

    o.n_ctx = 64; // above the model's 32
    r = compute_perplexity(model, fake_tokens(200, kVocab), o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUsage);
    EXPECT_NE(r.error().message.find("maximum of 32"), std::string::npos);

    o.n_ctx = 16;
    auto bad = fake_tokens(40, kVocab);
    bad[7] = kVocab;
    r = compute_perplexity(model, bad, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_NE(r.error().message.find("token 7"), std::string::npos);

    o.stride = 17;
    r = compute_perplexity(model, fake_tokens(40, kVocab), o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUsage);

    o.stride = 0;
    o.n_batch = 0;
    EXPECT_EQ(compute_perplexity(model, fake_tokens(40, kVocab), o).error().code, ErrorCode::kUsage);
    o.n_batch = 512;
    o.n_ctx = 2;
    EXPECT_EQ(compute_perplexity(model, fake_tokens(40, kVocab), o).error().code, ErrorCode::kUsage);
}

TEST(Perplexity, StrideAcceptsTextShorterThanContext) {
    FakeLanguageModel model(kVocab, 32);
    PerplexityOptions o;
    o.n_ctx = 32;
    o.stride = 8;
    const auto tokens = fake_tokens(9, kVocab);
    auto r = compute_perplexity(model, tokens, o);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->n_chunks, 1);
    EXPECT_EQ(r->n_scored, 8);
    EXPECT_NEAR(r->ppl, brute_hf(tokens, 32, 8).ppl(), 1e-9 * r->ppl);
}

} // namespace
} // namespace lowbit::pipeline
