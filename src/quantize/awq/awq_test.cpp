// SPDX-License-Identifier: MIT
// AWQ math on synthetic groups: pseudo_quantize against hand-computed groups, w̄ / scale formulas by hand, the
// scale search's losses and argmin against a straightforward re-implementation in the test, AWQ beating RTN when
// a few input channels are large, the clip search against brute force, and bad options.
#include "quantize/awq/awq.h"

#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::quantize::awq {
namespace {

AwqOptions opts(int bits, int64_t group, bool zero_point = true) {
    AwqOptions o;
    o.bits = bits, o.group_size = group, o.zero_point = zero_point;
    return o;
}

TEST(AwqPseudoQuantize, AsymmetricGroupByHand) {
    // 2 bits: min -1, max 2 -> s = 3/3 = 1, z = -round(-1) = 1; 0.5 rounds half to even (0), 0.2 -> 0.
    std::vector<float> w = {-1.0f, 0.2f, 0.5f, 2.0f, /* second group */ 0.0f, 0.0f, 0.0f, 0.0f};
    GroupQuant q;
    pseudo_quantize(w.data(), 1, 8, opts(2, 4), false, &q);
    EXPECT_EQ(w, (std::vector<float>{-1.0f, 0.0f, 0.0f, 2.0f, 0.0f, 0.0f, 0.0f, 0.0f}));
    EXPECT_EQ(q.codes, (std::vector<uint8_t>{0, 1, 1, 3, 0, 0, 0, 0}));
    ASSERT_EQ(q.scales.size(), 2u);
    EXPECT_FLOAT_EQ(q.scales[0], 1.0f);
    EXPECT_FLOAT_EQ(q.scales[1], 1e-5f / 3.0f); // the all-zero group: (max - min) clamped to 1e-5
    EXPECT_EQ(q.zeros, (std::vector<int32_t>{1, 0}));
}

TEST(AwqPseudoQuantize, AsymmetricZeroClampsAndCodesClamp) {
    // 4 bits, all positive: min 1 -> z = -round(1/s) < 0 clamps to 0, so values below s*15 clip at the top.
    std::vector<float> w = {1.0f, 2.5f, 4.0f, 16.0f};
    GroupQuant q;
    pseudo_quantize(w.data(), 1, 4, opts(4, 4), false, &q);
    EXPECT_FLOAT_EQ(q.scales[0], 1.0f); // (16 - 1) / 15
    EXPECT_EQ(q.zeros[0], 0);
    EXPECT_EQ(q.codes, (std::vector<uint8_t>{1, 2, 4, 15})); // 2.5 -> 2 (half to even)
    EXPECT_EQ(w, (std::vector<float>{1.0f, 2.0f, 4.0f, 15.0f}));
}

TEST(AwqPseudoQuantize, SymmetricGroupByHand) {
    // 4 bits: max |w| = 1.75 -> s = 1.75 / 7 = 0.25; 3.5 -> 4, 2.5 -> 2 (half to even); codes offset by 8.
    std::vector<float> w = {0.875f, -1.75f, 0.625f, 0.0f};
    GroupQuant q;
    pseudo_quantize(w.data(), 1, 4, opts(4, 4, false), false, &q);
    EXPECT_EQ(w, (std::vector<float>{1.0f, -1.75f, 0.5f, 0.0f}));
    EXPECT_EQ(q.codes, (std::vector<uint8_t>{12, 1, 10, 8}));
    EXPECT_EQ(q.zeros[0], 8);
    EXPECT_FLOAT_EQ(q.scales[0], 0.25f);
}

TEST(AwqPseudoQuantize, F16ScalesDequantizeExactly) {
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    std::vector<float> w(4 * 64);
    for (float& v : w) v = nd(rng);
    auto dq = w;
    GroupQuant q;
    pseudo_quantize(dq.data(), 4, 64, opts(3, 32), true, &q);
    for (int64_t r = 0; r < 4; ++r)
        for (int64_t c = 0; c < 64; ++c) {
            const size_t g = size_t(r * 2 + c / 32), i = size_t(r * 64 + c);
            ASSERT_GE(q.codes[i], 0);
            ASSERT_LE(q.codes[i], 7);
            EXPECT_EQ(dq[i], q.scales[g] * float(q.codes[i] - q.zeros[g]));
            EXPECT_LE(std::fabs(dq[i] - w[i]), 0.5f * q.scales[g] * 1.001f + 1e-9f);
        }
}

TEST(AwqScales, WeightMeanAndRatioScalesByHand) {
    // Two linears of one row each, n_in 4, group 2: |w| / (group max + 1e-6), averaged over the 2 rows.
    const std::vector<float> a = {1.0f, -2.0f, 4.0f, 0.0f}, b = {3.0f, 3.0f, -1.0f, 2.0f};
    const LinearRef refs[2] = {{a.data(), 1}, {b.data(), 1}};
    const auto m = weight_mean(refs, 4, 2);
    const double e = 1e-6;
    EXPECT_NEAR(m[0], (1 / (2 + e) + 3 / (3 + e)) / 2, 1e-6);
    EXPECT_NEAR(m[1], (2 / (2 + e) + 3 / (3 + e)) / 2, 1e-6);
    EXPECT_NEAR(m[2], (4 / (4 + e) + 1 / (2 + e)) / 2, 1e-6);
    EXPECT_NEAR(m[3], (0 + 2 / (2 + e)) / 2, 1e-6);
    // ratio 0.5, duo: s = sqrt(x) / (sqrt(w) + 1e-4), then / sqrt(max * min).
    const std::vector<float> x = {4.0f, 1.0f, 9.0f, 0.25f}, wm = {1.0f, 0.25f, 1.0f, 0.0625f};
    const auto s = ratio_scales(x, wm, 0.5, true);
    std::vector<double> raw = {2 / (1 + 1e-4), 1 / (0.5 + 1e-4), 3 / (1 + 1e-4), 0.5 / (0.25 + 1e-4)};
    const double norm =
        std::sqrt(*std::max_element(raw.begin(), raw.end()) * *std::min_element(raw.begin(), raw.end()));
    for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(s[i], raw[i] / norm, 1e-6) << i;
    // ratio 0: x^0 = 1, so s = 1 / (w + 1e-4) normalized; no duo: all ones.
    const auto s0 = ratio_scales(x, wm, 0.0, false);
    for (float v : s0) EXPECT_FLOAT_EQ(v, 1.0f);
}

// A linear layer [n_out, n_in] whose inputs have a few channels 30x larger than the rest.
struct Synthetic {
    int64_t n_out = 48, n_in = 256, n_tokens = 384;
    std::vector<float> w, x;
    explicit Synthetic(uint32_t seed) {
        std::mt19937 rng(seed);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        w.resize(size_t(n_out * n_in)), x.resize(size_t(n_tokens * n_in));
        for (float& v : w) v = nd(rng) * 0.05f;
        for (int64_t t = 0; t < n_tokens; ++t)
            for (int64_t c = 0; c < n_in; ++c) x[size_t(t * n_in + c)] = nd(rng) * (c % 61 == 7 ? 30.0f : 1.0f);
    }
    std::vector<float> out(const std::vector<float>& weights) const {
        std::vector<float> y(size_t(n_tokens * n_out), 0.0f);
        for (int64_t t = 0; t < n_tokens; ++t)
            for (int64_t r = 0; r < n_out; ++r) {
                double acc = 0;
                for (int64_t c = 0; c < n_in; ++c)
                    acc += double(x[size_t(t * n_in + c)]) * weights[size_t(r * n_in + c)];
                y[size_t(t * n_out + r)] = float(acc);
            }
        return y;
    }
    std::vector<float> x_mean() const {
        ChannelMeanAbs m(n_in);
        m.add(x.data(), n_tokens);
        return m.mean();
    }
};

// The test's own AutoAWQ grid point: scales, Q(W*s)/s with a plain asymmetric quantizer, output MSE.
double oracle_loss(const Synthetic& s, const std::vector<float>& ref, double ratio, int bits, int64_t g) {
    std::vector<double> xm(size_t(s.n_in), 0.0), wm(size_t(s.n_in), 0.0);
    for (int64_t t = 0; t < s.n_tokens; ++t)
        for (int64_t c = 0; c < s.n_in; ++c) xm[size_t(c)] += std::fabs(s.x[size_t(t * s.n_in + c)]) / s.n_tokens;
    for (int64_t r = 0; r < s.n_out; ++r)
        for (int64_t j = 0; j < s.n_in; j += g) {
            double mx = 0;
            for (int64_t c = j; c < j + g; ++c) mx = std::max(mx, double(std::fabs(s.w[size_t(r * s.n_in + c)])));
            for (int64_t c = j; c < j + g; ++c)
                wm[size_t(c)] += std::fabs(s.w[size_t(r * s.n_in + c)]) / (mx + 1e-6) / s.n_out;
        }
    std::vector<double> sc(size_t(s.n_in));
    for (int64_t c = 0; c < s.n_in; ++c)
        sc[size_t(c)] = std::max(std::pow(xm[size_t(c)], ratio) / (std::pow(wm[size_t(c)], 1 - ratio) + 1e-4), 1e-4);
    const double norm = std::sqrt(*std::max_element(sc.begin(), sc.end()) * *std::min_element(sc.begin(), sc.end()));
    std::vector<float> q(s.w.size());
    const double max_int = (1 << bits) - 1;
    for (int64_t r = 0; r < s.n_out; ++r)
        for (int64_t j = 0; j < s.n_in; j += g) {
            std::vector<double> v;
            for (int64_t c = j; c < j + g; ++c) v.push_back(s.w[size_t(r * s.n_in + c)] * sc[size_t(c)] / norm);
            const double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
            const double step = std::max(hi - lo, 1e-5) / max_int,
                         z = std::clamp(-std::nearbyint(lo / step), 0.0, max_int);
            for (int64_t c = j; c < j + g; ++c) {
                const double qv = std::clamp(std::nearbyint(v[size_t(c - j)] / step) + z, 0.0, max_int);
                q[size_t(r * s.n_in + c)] = float((qv - z) * step / (sc[size_t(c)] / norm));
            }
        }
    const auto y = s.out(q);
    return mean_squared_error(y.data(), ref.data(), int64_t(y.size()));
}

TEST(AwqScaleSearch, LossesAndArgminMatchAnIndependentGrid) {
    const Synthetic s(3);
    const auto ref = s.out(s.w);
    const LinearRef refs[1] = {{s.w.data(), s.n_out}};
    BlockLoss block = [&](std::span<const std::vector<float>> w) -> Result<double> {
        const auto y = s.out(w[0]);
        return mean_squared_error(y.data(), ref.data(), int64_t(y.size()));
    };
    auto r = search_best_scale(refs, s.n_in, s.x_mean(), block, opts(3, 64));
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->losses.size(), 20u);
    std::vector<double> mine;
    for (int i = 0; i < 20; ++i) {
        mine.push_back(oracle_loss(s, ref, i / 20.0, 3, 64));
        EXPECT_NEAR(r->losses[size_t(i)], mine.back(), 2e-3 * mine.back()) << "ratio " << i;
    }
    const int argmin = int(std::min_element(mine.begin(), mine.end()) - mine.begin());
    EXPECT_EQ(r->best_index, argmin);
    EXPECT_DOUBLE_EQ(r->best_ratio, argmin / 20.0);
    EXPECT_GT(r->best_index, 0) << "outlier channels should make some scaling worth it";
    EXPECT_EQ(r->scales, ratio_scales(s.x_mean(), weight_mean(refs, s.n_in, 64), r->best_ratio, true));
}

TEST(AwqScaleSearch, BeatsRtnWhenFewChannelsAreLarge) {
    for (int bits : {3, 4}) {
        const Synthetic s(11);
        const auto ref = s.out(s.w);
        const LinearRef refs[1] = {{s.w.data(), s.n_out}};
        BlockLoss block = [&](std::span<const std::vector<float>> w) -> Result<double> {
            const auto y = s.out(w[0]);
            return mean_squared_error(y.data(), ref.data(), int64_t(y.size()));
        };
        const AwqOptions o = opts(bits, 64);
        auto r = search_best_scale(refs, s.n_in, s.x_mean(), block, o);
        ASSERT_TRUE(r.ok()) << r.error().message;
        // Fold: W*s quantized, inputs / s (the previous op absorbs 1/s): the output is x/s · Q(W*s)^T.
        std::vector<float> ws = s.w;
        for (size_t i = 0; i < ws.size(); ++i) ws[i] *= r->scales[i % size_t(s.n_in)];
        pseudo_quantize(ws.data(), s.n_out, s.n_in, o);
        for (size_t i = 0; i < ws.size(); ++i) ws[i] /= r->scales[i % size_t(s.n_in)];
        std::vector<float> rtn = s.w;
        pseudo_quantize(rtn.data(), s.n_out, s.n_in, o);
        const auto ya = s.out(ws), yr = s.out(rtn);
        const double awq = mean_squared_error(ya.data(), ref.data(), int64_t(ref.size()));
        const double plain = mean_squared_error(yr.data(), ref.data(), int64_t(ref.size()));
        EXPECT_LT(awq, 0.7 * plain) << bits << " bits: awq " << awq << " rtn " << plain;
    }
}

TEST(AwqClip, MatchesBruteForceAndNeverLosesToNoClip) {
    const Synthetic s(5);
    AwqOptions o = opts(3, 64);
    o.n_sample_token = 100; // step 3 -> 128 tokens
    auto best = search_best_clip(s.w.data(), s.n_out, s.n_in, s.x.data(), s.n_tokens, o);
    ASSERT_TRUE(best.ok()) << best.error().message;
    const int64_t n_groups = 4, step = 3;
    int n_shrunk = 0;
    for (int64_t r = 0; r < s.n_out; ++r)
        for (int64_t j = 0; j < n_groups; ++j) {
            float amax = 0;
            for (int64_t c = 0; c < 64; ++c) amax = std::max(amax, std::fabs(s.w[size_t(r * s.n_in + j * 64 + c)]));
            std::vector<double> errs;
            for (int i = 0; i < 10; ++i) {
                const float m = amax * float(1.0 - i / 20.0);
                std::vector<float> q(64);
                for (int64_t c = 0; c < 64; ++c) q[size_t(c)] = std::clamp(s.w[size_t(r * s.n_in + j * 64 + c)], -m, m);
                pseudo_quantize(q.data(), 1, 64, opts(3, 64));
                double err = 0;
                int64_t n = 0;
                for (int64_t t = 0; t < s.n_tokens; t += step, ++n) {
                    double d = 0;
                    for (int64_t c = 0; c < 64; ++c)
                        d += double(s.x[size_t(t * s.n_in + j * 64 + c)]) *
                             (q[size_t(c)] - s.w[size_t(r * s.n_in + j * 64 + c)]);
                    err += d * d;
                }
                errs.push_back(err / double(n));
            }
            // The chosen candidate is one of the grid's and its error is the minimum (up to f32 GEMM rounding).
            const float chosen = (*best)[size_t(r * n_groups + j)];
            const int i = int(std::lround((1.0 - double(chosen) / double(amax)) * 20.0));
            ASSERT_GE(i, 0);
            ASSERT_LT(i, 10);
            EXPECT_NEAR(chosen, amax * float(1.0 - i / 20.0), 1e-6f * amax);
            const double min_err = *std::min_element(errs.begin(), errs.end());
            EXPECT_LE(errs[size_t(i)], min_err * (1 + 1e-3) + 1e-12) << r << "," << j;
            const float best_m = chosen;
            n_shrunk += best_m < amax;
        }
    EXPECT_GT(n_shrunk, 0);
    std::vector<float> w = s.w;
    apply_clip(w.data(), s.n_out, s.n_in, 64, *best);
    for (size_t i = 0; i < w.size(); ++i)
        EXPECT_LE(std::fabs(w[i]), (*best)[(i / 256) * 4 + (i % 256) / 64] * (1 + 1e-6f));
}

TEST(AwqOptionsCheck, BadInputIsAnError) {
    EXPECT_EQ(validate(opts(5, 128), 256).error().code, ErrorCode::kUsage);
    auto e = validate(opts(4, 100), 256);
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message.find("divide"), std::string::npos) << e.error().message;
    EXPECT_TRUE(validate(opts(4, -1), 250).ok());
    AwqOptions o = opts(4, 64);
    o.max_shrink = 1.0;
    EXPECT_FALSE(validate(o, 256).ok());
    const std::vector<float> w(64 * 64, 0.5f), x(64, 1.0f);
    EXPECT_EQ(search_best_clip(w.data(), 64, 64, x.data(), 0, opts(4, 64)).error().code, ErrorCode::kBadInput);
    const LinearRef refs[1] = {{w.data(), 64}};
    BlockLoss block = [](std::span<const std::vector<float>>) -> Result<double> { return 1.0; };
    EXPECT_EQ(search_best_scale(refs, 64, std::vector<float>(10, 1.0f), block, opts(4, 64)).error().code,
              ErrorCode::kBadInput);
    BlockLoss nan_block = [](std::span<const std::vector<float>>) -> Result<double> { return std::nan(""); };
    EXPECT_EQ(search_best_scale(refs, 64, std::vector<float>(64, 1.0f), nan_block, opts(4, 64)).error().code,
              ErrorCode::kBadInput);
}

} // namespace
} // namespace lowbit::quantize::awq
