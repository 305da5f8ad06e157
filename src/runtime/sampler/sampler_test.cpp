// SPDX-License-Identifier: MIT
// Sampler tests on fixed logits: exact survivors of each filter, greedy = argmax, seeded draws reproducible,
// and the empirical distribution of draws matches softmax(logits / temp).
#include "runtime/sampler/sampler.h"

#include <cmath>
#include <gtest/gtest.h>
#include <set>

namespace lowbit::runtime {
namespace {

std::vector<int32_t> ids(const std::vector<Candidate>& cands) {
    std::vector<int32_t> out;
    for (const auto& c : cands) out.push_back(c.id);
    return out;
}

// Logits whose softmax is exactly proportional to `probs`.
std::vector<float> logits_from_probs(const std::vector<double>& probs) {
    std::vector<float> l;
    for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
    return l;
}

TEST(Sampler, TopKKeepsTheKHighestTiesByLowerId) {
    const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.5f, -1.0f, 3.0f};
    auto c = make_candidates(logits);
    apply_top_k(c, 3);
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 5, 2}));
    c = make_candidates(logits);
    apply_top_k(c, 0); // disabled: all, sorted
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 5, 2, 0, 3, 4}));
    c = make_candidates(logits);
    apply_top_k(c, 100);
    EXPECT_EQ(c.size(), 6u);
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingP) {
    const auto logits = logits_from_probs({0.1, 0.5, 0.15, 0.25});
    auto c = make_candidates(logits);
    apply_top_p(c, 0.7f); // 0.5, 0.75 >= 0.7
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3}));
    c = make_candidates(logits);
    apply_top_p(c, 0.8f); // 0.5, 0.75, 0.9
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3, 2}));
    c = make_candidates(logits);
    apply_top_p(c, 0.3f); // first alone already reaches it
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1}));
    c = make_candidates(logits);
    apply_top_p(c, 0.3f, 3); // min_keep wins
    EXPECT_EQ(c.size(), 3u);
    c = make_candidates(logits);
    apply_top_p(c, 1.0f);
    EXPECT_EQ(c.size(), 4u);
}

TEST(Sampler, MinPKeepsTokensAboveFractionOfMax) {
    const auto logits = logits_from_probs({0.1, 0.5, 0.15, 0.25});
    auto c = make_candidates(logits);
    apply_min_p(c, 0.4f); // threshold 0.2: 0.5, 0.25
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3}));
    c = make_candidates(logits);
    apply_min_p(c, 0.25f); // threshold 0.125: 0.5, 0.25, 0.15
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3, 2}));
    c = make_candidates(logits);
    apply_min_p(c, 0.0f);
    EXPECT_EQ(c.size(), 4u);
    c = make_candidates(logits);
    apply_min_p(c, 1.0f); // only the max
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1}));
}

TEST(Sampler, RepeatPenaltyDividesPositiveMultipliesNegativeOncePerToken) {
    const std::vector<float> logits = {2.0f, -1.0f, 3.0f, 4.0f};
    auto c = make_candidates(logits);
    const std::vector<int32_t> history = {0, 1, 0, 0};
    apply_repeat_penalty(c, history, 2.0f);
    EXPECT_FLOAT_EQ(c[0].logit, 1.0f);
    EXPECT_FLOAT_EQ(c[1].logit, -2.0f);
    EXPECT_FLOAT_EQ(c[2].logit, 3.0f);
    EXPECT_FLOAT_EQ(c[3].logit, 4.0f);
}

TEST(Sampler, TemperatureScalesAndZeroIsArgmax) {
    const std::vector<float> logits = {2.0f, -1.0f, 3.0f, 3.0f};
    auto c = make_candidates(logits);
    apply_temperature(c, 2.0f);
    EXPECT_FLOAT_EQ(c[0].logit, 1.0f);
    EXPECT_FLOAT_EQ(c[2].logit, 1.5f);
    c = make_candidates(logits);
    apply_temperature(c, 0.0f);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].id, 2); // tie with id 3: lower id
}

TEST(Sampler, GreedyIsArgmaxAfterPenalty) {
    SamplerOptions o;
    o.temp = 0.0f;
    Sampler s(o);
    const std::vector<float> logits = {0.5f, 4.0f, 3.0f, -2.0f};
    EXPECT_EQ(s.sample(logits), 1);
    EXPECT_EQ(s.sample(logits), 1); // greedy does not consume randomness or change
    o.repeat_penalty = 2.0f;
    Sampler p(o);
    p.accept(1); // 4 -> 2, so id 2 (3.0) wins
    EXPECT_EQ(p.sample(logits), 2);
}

TEST(Sampler, RepeatHistoryIsBoundedByLastN) {
    SamplerOptions o;
    o.temp = 0.0f;
    o.repeat_penalty = 100.0f;
    o.repeat_last_n = 2;
    Sampler s(o);
    const std::vector<float> logits = {1.0f, 0.9f, 0.8f};
    s.accept(0);
    EXPECT_EQ(s.sample(logits), 1);
    s.accept(7);
    s.accept(8); // 0 fell out of the window of 2
    EXPECT_EQ(s.sample(logits), 0);
    s.reset();
    EXPECT_EQ(s.sample(logits), 0);
}

TEST(Sampler, SeededDrawsAreReproducible) {
    SamplerOptions o;
    o.temp = 1.0f;
    o.top_k = 0;
    o.top_p = 1.0f;
    o.min_p = 0.0f;
    o.seed = 1234;
    std::vector<float> logits(50);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(std::sin(double(i)));
    Sampler a(o), b(o);
    std::vector<int32_t> ra, rb;
    for (int i = 0; i < 200; ++i) {
        ra.push_back(a.sample(logits));
        rb.push_back(b.sample(logits));
    }
    EXPECT_EQ(ra, rb);
    o.seed = 1235;
    Sampler c(o);
    std::vector<int32_t> rc;
    for (int i = 0; i < 200; ++i) rc.push_back(c.sample(logits));
    EXPECT_NE(ra, rc);
}

// Counts 40000 draws and compares frequencies with softmax(logits / temp) computed here in double.
void expect_distribution(float temp) {
    SamplerOptions o;
    o.temp = temp;
    o.top_k = 0;
    o.top_p = 1.0f;
    o.min_p = 0.0f;
    o.seed = 42;
    const std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
    const auto logits = logits_from_probs(probs);
    std::vector<double> expect(probs.size());
    double z = 0;
    for (size_t i = 0; i < probs.size(); ++i) z += expect[i] = std::pow(probs[i], 1.0 / temp);
    Sampler s(o);
    std::vector<int> counts(probs.size(), 0);
    const int n = 40000;
    for (int i = 0; i < n; ++i) counts[static_cast<size_t>(s.sample(logits))]++;
    for (size_t i = 0; i < probs.size(); ++i) {
        const double q = expect[i] / z;
        const double sigma = std::sqrt(q * (1 - q) / n);
        EXPECT_NEAR(double(counts[i]) / n, q, 5 * sigma) << "token " << i << " temp " << temp;
    }
}

TEST(Sampler, DrawFrequenciesMatchSoftmax) {
    expect_distribution(1.0f);
    expect_distribution(2.0f);
    expect_distribution(0.5f);
}

TEST(Sampler, ChainRestrictsDrawsToSurvivors) {
    SamplerOptions o; // defaults: top-k 40, top-p 0.95, min-p 0.05, temp 0.8
    o.top_k = 3;
    o.seed = 7;
    const auto logits = logits_from_probs({0.3, 0.02, 0.25, 0.2, 0.23});
    Sampler s(o);
    std::set<int32_t> seen;
    for (int i = 0; i < 2000; ++i) seen.insert(s.sample(logits));
    EXPECT_EQ(seen, (std::set<int32_t>{0, 2, 4})); // top-3; top-p 0.95 of {0.3,0.25,0.23}/0.78 keeps all
}

TEST(Sampler, NanLogitsAreNeverChosen) {
    const std::vector<float> logits = {NAN, 1.0f, NAN, 2.0f, NAN};
    SamplerOptions o;
    o.temp = 0.0f;
    EXPECT_EQ(Sampler(o).sample(logits), 3);
    o.temp = 1.0f;
    o.top_k = 0;
    o.top_p = 1.0f;
    o.min_p = 0.0f;
    Sampler s(o);
    for (int i = 0; i < 200; ++i) {
        const int32_t id = s.sample(logits);
        EXPECT_TRUE(id == 1 || id == 3) << id;
    }
}

TEST(Sampler, ValidateRejectsOutOfRange) {
    SamplerOptions o;
    EXPECT_TRUE(validate(o).ok());
    o.top_p = 1.5f;
    EXPECT_EQ(validate(o).error().code, ErrorCode::kUsage);
    o = SamplerOptions{};
    o.min_p = -0.1f;
    EXPECT_FALSE(validate(o).ok());
    o = SamplerOptions{};
    o.repeat_penalty = 0.0f;
    EXPECT_FALSE(validate(o).ok());
    o = SamplerOptions{};
    o.repeat_last_n = -2;
    EXPECT_NE(validate(o).error().message.find("--repeat-last-n"), std::string::npos);
}

} // namespace
} // namespace lowbit::runtime
