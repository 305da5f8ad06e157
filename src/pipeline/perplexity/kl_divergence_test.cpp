// SPDX-License-Identifier: MIT
// KL divergence and the base file: round trip of the uint16 rows, a model against itself (KLD ~ 0, top-1
// 100 %), two different fake models against a brute-force double-precision computation, llama.cpp's
// percentile/median/uncertainty definitions, and every mismatch between a base file and a model.
#include "core/file.h"
#include "pipeline/perplexity/fake_model_for_test.h"
#include "pipeline/perplexity/kl_divergence.h"
#include "pipeline/perplexity/log_softmax.h"
#include "pipeline/perplexity/perplexity.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <gtest/gtest.h>
#include <unistd.h>

namespace lowbit::pipeline {
namespace {

using testing::fake_logits;
using testing::fake_tokens;
using testing::FakeLanguageModel;

constexpr int64_t kVocab = 41; // odd: exercises the row padding
constexpr int64_t kCtx = 24;
constexpr int64_t kChunks = 10; // 10 * 11 = 110 scored tokens (>= 100, as llama.cpp wants for statistics)

// Per-process names: other builds' copies of this test may run at the same time.
std::string temp_path(const std::string& name) {
    return ::testing::TempDir() + "/lowbit_kld_" + std::to_string(::getpid()) + "_" + name;
}

// Removes this process's files when the test binary ends.
struct TempCleanup {
    ~TempCleanup() {
        for (const char* n : {"roundtrip.bin", "self.bin", "two.bin", "mismatch.bin", "rows_a.bin", "rows_b.bin",
                              "trunc.bin", "magic.bin", "version.bin", "tok.bin", "empty.bin"})
            std::remove(temp_path(n).c_str());
    }
} temp_cleanup;

// Writes the base file of `model` over `tokens` through the perplexity pass, as `lowbit perplexity
// --kl-divergence-base` does.
Result<PerplexityResult> write_base(FakeLanguageModel& model, const std::vector<int32_t>& tokens,
                                    const std::string& path, int32_t bos) {
    LogProbFileHeader h;
    h.n_ctx = kCtx;
    h.n_vocab = model.n_vocab();
    h.n_chunk = kChunks;
    h.bos_id = bos;
    LOWBIT_ASSIGN_OR_RETURN(
        auto w, LogProbWriter::create(path, h, std::span<const int32_t>(tokens).first(size_t(kCtx * kChunks))));
    PerplexityOptions o;
    o.n_ctx = kCtx;
    o.n_batch = 10;
    o.bos_id = bos;
    LOWBIT_ASSIGN_OR_RETURN(auto r, compute_perplexity(model, tokens, o, {}, w.get()));
    LOWBIT_TRY(w->commit());
    return r;
}

std::vector<double> log_softmax_d(const std::vector<double>& row) {
    double mx = -1e300;
    for (double v : row) mx = std::max(mx, double(float(v)));
    double s = 0;
    for (double v : row) s += std::exp(double(float(v)) - mx);
    std::vector<double> out;
    for (double v : row) out.push_back(double(float(v)) - mx - std::log(s));
    return out;
}

TEST(LogProbFile, PackedRowsDecodeWithinHalfAStep) {
    std::vector<float> logits = {3.0f, -20.0f, 2.5f, 0.0f, -12.9f, 3.0f, 1.25f};
    std::vector<uint16_t> row(size_t(packed_row_u16(7)));
    EXPECT_EQ(row.size(), 4u + 8u);
    pack_log_probs(logits, row.data());
    const auto h = packed_row_header(row.data());
    EXPECT_NEAR(h.scale, 16.0 / 65535.0, 1e-9); // range clamped to 16 below the max
    std::vector<double> ld(logits.begin(), logits.end());
    const auto lp = log_softmax_d(ld);
    for (size_t i = 0; i < logits.size(); ++i) {
        const double dec = double(h.scale) * packed_row_codes(row.data())[i] + double(h.min_log_prob);
        if (logits[i] > 3.0f - 16.0f)
            EXPECT_NEAR(dec, lp[i], 0.5 * h.scale + 1e-6) << i;
        else
            EXPECT_EQ(packed_row_codes(row.data())[i], 0) << i; // clamped
    }
    std::vector<float> flat(5, 1.5f); // constant row: scale 0, log p = -log 5 everywhere
    pack_log_probs(flat, row.data());
    EXPECT_EQ(packed_row_header(row.data()).scale, 0.0f);
    EXPECT_NEAR(packed_row_header(row.data()).min_log_prob, -std::log(5.0), 1e-6);
}

TEST(LogProbFile, ParallelRowsEqualSingleRows) {
    LogProbFileHeader h;
    h.n_ctx = 6; // 2 rows per chunk
    h.n_vocab = 5;
    h.n_chunk = 3;
    const std::vector<int32_t> tokens(18, 1);
    std::vector<float> logits(6 * 5);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(std::sin(0.7 * double(i)) * 4);
    auto a = LogProbWriter::create(temp_path("rows_a.bin"), h, tokens);
    auto b = LogProbWriter::create(temp_path("rows_b.bin"), h, tokens);
    ASSERT_TRUE(a.ok() && b.ok());
    for (size_t r = 0; r < 6; ++r) ASSERT_TRUE((*a)->write_row(std::span<const float>(logits).subspan(r * 5, 5)).ok());
    ASSERT_TRUE((*b)->write_rows(std::span<const float>(logits).first(20)).ok());
    EXPECT_FALSE((*b)->commit().ok()); // 4 of 6 rows: refuses to publish a short file
    ASSERT_TRUE((*b)->write_rows(std::span<const float>(logits).subspan(20)).ok());
    EXPECT_FALSE((*b)->write_rows(std::span<const float>(logits).first(5)).ok()); // one too many
    ASSERT_TRUE((*a)->commit().ok());
    ASSERT_TRUE((*b)->commit().ok());
    EXPECT_EQ(*read_file_to_string(temp_path("rows_a.bin")), *read_file_to_string(temp_path("rows_b.bin")));
    EXPECT_TRUE(LogProbReader::open(temp_path("rows_b.bin")).ok());
}

TEST(LogProbFile, RoundTripAndValidation) {
    const auto tokens = fake_tokens(kCtx * kChunks + 5, kVocab);
    FakeLanguageModel model(kVocab, 64);
    const std::string path = temp_path("roundtrip.bin");
    ASSERT_TRUE(write_base(model, tokens, path, 3).ok());
    auto rd = LogProbReader::open(path);
    ASSERT_TRUE(rd.ok()) << rd.error().message;
    EXPECT_EQ(rd->header().n_ctx, kCtx);
    EXPECT_EQ(rd->header().n_vocab, kVocab);
    EXPECT_EQ(rd->header().n_chunk, kChunks);
    EXPECT_EQ(rd->header().bos_id, 3);
    ASSERT_EQ(rd->tokens().size(), size_t(kCtx * kChunks));
    for (size_t i = 0; i < rd->tokens().size(); ++i) EXPECT_EQ(rd->tokens()[i], tokens[i]); // original, not BOS
    // Every stored row decodes to the log-softmax a brute force gets for that chunk position.
    for (int64_t c = 0; c < kChunks; ++c) {
        std::vector<int32_t> w(tokens.begin() + c * kCtx, tokens.begin() + (c + 1) * kCtx);
        w[0] = 3;
        for (int64_t r = 0; r < rd->header().rows_per_chunk(); ++r) {
            const auto lp = log_softmax_d(fake_logits(w, kCtx / 2 + r, kVocab, 0));
            const uint16_t* row = rd->row(c, r);
            const auto h = packed_row_header(row);
            for (int64_t v = 0; v < kVocab; ++v)
                ASSERT_NEAR(double(h.scale) * packed_row_codes(row)[v] + h.min_log_prob, lp[size_t(v)],
                            0.5 * h.scale + 1e-5);
        }
    }
    auto bytes = read_file_to_string(path);
    ASSERT_TRUE(bytes.ok());
    auto write = [&](const std::string& name, const std::string& content) {
        std::ofstream(temp_path(name), std::ios::binary) << content;
        return LogProbReader::open(temp_path(name));
    };
    auto truncated = write("trunc.bin", bytes->substr(0, bytes->size() - 3));
    ASSERT_FALSE(truncated.ok());
    EXPECT_EQ(truncated.error().code, ErrorCode::kBadInput);
    EXPECT_NE(truncated.error().message.find("truncated"), std::string::npos);
    std::string magic = *bytes;
    magic[0] = 'X';
    EXPECT_NE(write("magic.bin", magic).error().message.find("magic"), std::string::npos);
    std::string version = *bytes;
    version[8] = 9;
    EXPECT_NE(write("version.bin", version).error().message.find("version 9"), std::string::npos);
    std::string badtok = *bytes;
    badtok[32] = char(0xff); // token 0 := large id
    badtok[33] = char(0x7f);
    EXPECT_NE(write("tok.bin", badtok).error().message.find("outside the vocabulary"), std::string::npos);
    EXPECT_EQ(write("empty.bin", "").error().code, ErrorCode::kBadInput);
    EXPECT_FALSE(LogProbReader::open(temp_path("does_not_exist.bin")).ok());
}

TEST(KlDivergence, ModelAgainstItselfIsZero) {
    const auto tokens = fake_tokens(kCtx * kChunks, kVocab, 9);
    FakeLanguageModel base(kVocab, 64);
    const std::string path = temp_path("self.bin");
    auto ppl = write_base(base, tokens, path, 2);
    ASSERT_TRUE(ppl.ok()) << ppl.error().message;
    auto rd = LogProbReader::open(path);
    ASSERT_TRUE(rd.ok());
    FakeLanguageModel same(kVocab, 64);
    KldOptions o;
    o.bos_id = 2;
    o.n_batch = 7;
    int64_t n_reports = 0;
    auto r = compute_kl_divergence(same, *rd, o, [&](const KldChunkReport&) { ++n_reports; });
    ASSERT_TRUE(r.ok()) << r.error().message;
    const KldSummary& s = r->summary;
    EXPECT_EQ(n_reports, kChunks);
    EXPECT_EQ(s.n_tokens, kChunks * (kCtx - 1 - kCtx / 2));
    EXPECT_NEAR(s.kld.value, 0.0, 2e-4); // only the uint16 rounding (<= 16/65535/2 per log-prob) remains
    EXPECT_LT(s.kld_quantiles.max, 3e-4);
    EXPECT_DOUBLE_EQ(s.same_top.value, 1.0);
    EXPECT_DOUBLE_EQ(s.same_top.error, 0.0);
    EXPECT_NEAR(s.ppl.value, ppl->ppl, 1e-9 * ppl->ppl); // same NLLs as the perplexity pass
    EXPECT_NEAR(s.ppl_base.value, ppl->ppl, 2e-4 * ppl->ppl);
    EXPECT_NEAR(s.ln_ppl_ratio.value, 0.0, 2e-4);
    EXPECT_NEAR(s.p_diff_rms.value, 0.0, 1e-4);
    EXPECT_GT(s.cor_ln_ppl, 0.999);
}

TEST(KlDivergence, TwoModelsMatchBruteForce) {
    const auto tokens = fake_tokens(kCtx * kChunks, kVocab, 11);
    FakeLanguageModel base(kVocab, 64);
    const std::string path = temp_path("two.bin");
    ASSERT_TRUE(write_base(base, tokens, path, -1).ok());
    auto rd = LogProbReader::open(path);
    ASSERT_TRUE(rd.ok());
    FakeLanguageModel quant(kVocab, 64, /*variant=*/0.4);
    KldOptions o; // bos -1 like the base
    auto r = compute_kl_divergence(quant, *rd, o);
    ASSERT_TRUE(r.ok()) << r.error().message;

    // Brute force in double: exact distributions of both models at every scored position.
    std::vector<double> kld, p_diff, nll, nll_base;
    int64_t same_top = 0;
    for (int64_t c = 0; c < kChunks; ++c) {
        std::vector<int32_t> w(tokens.begin() + c * kCtx, tokens.begin() + (c + 1) * kCtx);
        for (int64_t j = kCtx / 2; j < kCtx - 1; ++j) {
            const auto lb = log_softmax_d(fake_logits(w, j, kVocab, 0));
            const auto lq = log_softmax_d(fake_logits(w, j, kVocab, 0.4));
            double k = 0;
            size_t ab = 0, aq = 0;
            for (size_t v = 0; v < lb.size(); ++v) {
                k += std::exp(lb[v]) * (lb[v] - lq[v]);
                if (lb[v] > lb[ab]) ab = v;
                if (lq[v] > lq[aq]) aq = v;
            }
            const int32_t t = w[size_t(j + 1)];
            kld.push_back(k);
            p_diff.push_back(std::exp(lq[size_t(t)]) - std::exp(lb[size_t(t)]));
            nll.push_back(-lq[size_t(t)]);
            nll_base.push_back(-lb[size_t(t)]);
            same_top += ab == aq;
        }
    }
    const double n = double(kld.size());
    auto mean = [&](const std::vector<double>& v) {
        double s = 0;
        for (double x : v) s += x;
        return s / n;
    };
    auto sem = [&](const std::vector<double>& v) { // sqrt((E[x^2] - E[x]^2) / (n - 1))
        double s2 = 0;
        for (double x : v) s2 += x * x;
        return std::sqrt((s2 / n - mean(v) * mean(v)) / (n - 1));
    };
    const KldSummary& s = r->summary;
    ASSERT_EQ(s.n_tokens, int64_t(kld.size()));
    EXPECT_GT(mean(kld), 0.01); // the variant really differs
    EXPECT_NEAR(s.kld.value, mean(kld), 2e-4);
    EXPECT_NEAR(s.kld.error, sem(kld), 2e-4);
    EXPECT_NEAR(s.p_diff.value, mean(p_diff), 1e-4);
    std::vector<double> pd2;
    for (double d : p_diff) pd2.push_back(d * d);
    EXPECT_NEAR(s.p_diff_rms.value, std::sqrt(mean(pd2)), 1e-4);
    EXPECT_NEAR(s.same_top.value, double(same_top) / n, 1e-12);
    EXPECT_NEAR(s.ppl.value, std::exp(mean(nll)), 1e-9 * s.ppl.value);
    EXPECT_NEAR(s.ppl_base.value, std::exp(mean(nll_base)), 2e-4 * s.ppl_base.value);
    EXPECT_NEAR(s.ppl.error, std::exp(mean(nll)) * sem(nll), 1e-6);
    EXPECT_NEAR(s.ln_ppl_ratio.value, mean(nll) - mean(nll_base), 2e-4);
    EXPECT_NEAR(s.ppl_ratio.value, std::exp(mean(nll) - mean(nll_base)), 2e-4);
    // Per-token values and their quantiles (llama.cpp: linear interpolation at fraction*(n-1)).
    ASSERT_EQ(r->kld_values.size(), kld.size());
    for (size_t i = 0; i < kld.size(); ++i) EXPECT_NEAR(r->kld_values[i], kld[i], 3e-4);
    std::vector<double> sorted = kld;
    std::sort(sorted.begin(), sorted.end());
    const double pos = 0.99 * (n - 1);
    const size_t ip = size_t(pos);
    EXPECT_NEAR(s.kld_quantiles.p99, sorted[ip] + (pos - ip) * (sorted[ip + 1] - sorted[ip]), 3e-4);
    EXPECT_NEAR(s.kld_quantiles.max, sorted.back(), 3e-4);
    EXPECT_NEAR(s.kld_quantiles.median, 0.5 * (sorted[size_t(n) / 2 - 1] + sorted[size_t(n) / 2]), 3e-4);
}

TEST(KlDivergence, PercentileAndMedianFollowLlamaCpp) {
    const std::vector<float> v = {1, 2, 3, 4};
    EXPECT_DOUBLE_EQ(percentile(v, 0.5), 2.5);
    EXPECT_NEAR(percentile(v, 0.9), 3.7, 1e-12);
    EXPECT_DOUBLE_EQ(percentile(v, 0.0), 1.0);
    EXPECT_DOUBLE_EQ(percentile(v, 1.0), 4.0);
    KldSums sums;
    sums.count = 4;
    const auto s = summarize_kld(sums, {4, 1, 3, 2}, {0.5f, -0.5f, 0.25f});
    EXPECT_DOUBLE_EQ(s.kld_quantiles.median, 2.5);
    EXPECT_DOUBLE_EQ(s.kld_quantiles.min, 1.0);
    EXPECT_DOUBLE_EQ(s.p_diff_quantiles.median, 0.25);
    // Uncertainties are zero for 10 or fewer tokens (llama.cpp's mean_and_uncertainty).
    sums.sum_kld = 4;
    sums.sum_kld2 = 10;
    EXPECT_DOUBLE_EQ(summarize_kld(sums).kld.value, 1.0);
    EXPECT_DOUBLE_EQ(summarize_kld(sums).kld.error, 0.0);
}

TEST(KlDivergence, MismatchedBaseIsRejected) {
    const auto tokens = fake_tokens(kCtx * kChunks, kVocab, 13);
    FakeLanguageModel base(kVocab, 64);
    const std::string path = temp_path("mismatch.bin");
    ASSERT_TRUE(write_base(base, tokens, path, 2).ok());
    auto rd = LogProbReader::open(path);
    ASSERT_TRUE(rd.ok());
    KldOptions o;
    o.bos_id = 2;
    FakeLanguageModel bigger(kVocab + 1, 64);
    auto r = compute_kl_divergence(bigger, *rd, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_NE(r.error().message.find("vocabulary of 41"), std::string::npos) << r.error().message;
    FakeLanguageModel small_ctx(kVocab, kCtx - 1);
    EXPECT_EQ(compute_kl_divergence(small_ctx, *rd, o).error().code, ErrorCode::kBadInput);
    FakeLanguageModel same(kVocab, 64);
    o.bos_id = 5;
    r = compute_kl_divergence(same, *rd, o);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("BOS"), std::string::npos);
    // A different text (token stream) is caught before evaluation.
    EXPECT_TRUE(check_base_tokens(*rd, tokens).ok());
    auto other = tokens;
    other[100] = (other[100] + 1) % kVocab;
    const Status st = check_base_tokens(*rd, other);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("token 100"), std::string::npos);
    EXPECT_FALSE(check_base_tokens(*rd, std::span<const int32_t>(tokens).first(50)).ok());
}

} // namespace
} // namespace lowbit::pipeline
