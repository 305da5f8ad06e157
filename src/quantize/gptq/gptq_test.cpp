// SPDX-License-Identifier: MIT
// GPTQ on small synthetic layers: beats RTN on the layer output, act-order bookkeeping, damping, errors.
#include "quantize/gptq/gptq.h"

#include <cmath>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::quantize::gptq {
namespace {

struct Layer {
    int64_t n = 48, k = 128, t = 512;
    std::vector<float> w, x; // w [n, k], x [t, k]
};

// Correlated inputs with a few large channels, as real activations have.
Layer make_layer(uint32_t seed, int64_t n = 48, int64_t k = 128) {
    Layer l;
    l.n = n;
    l.k = k;
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0.0f, 1.0f);
    l.w.resize(size_t(n * k));
    for (auto& v : l.w) v = g(rng) * 0.05f;
    l.x.resize(size_t(l.t * k));
    std::vector<float> base(static_cast<size_t>(l.t));
    for (auto& v : base) v = g(rng);
    for (int64_t t = 0; t < l.t; ++t)
        for (int64_t c = 0; c < k; ++c)
            l.x[size_t(t * k + c)] = (0.6f * base[size_t(t)] + g(rng)) * (c % 17 == 0 ? 8.0f : 1.0f);
    return l;
}

double output_error(const Layer& l, const std::vector<float>& wq) {
    double e = 0.0;
    for (int64_t t = 0; t < l.t; ++t)
        for (int64_t r = 0; r < l.n; ++r) {
            double d = 0.0;
            for (int64_t c = 0; c < l.k; ++c)
                d += double(l.w[size_t(r * l.k + c)] - wq[size_t(r * l.k + c)]) * l.x[size_t(t * l.k + c)];
            e += d * d;
        }
    return e;
}

std::vector<float> rtn(const Layer& l, int bits, int64_t gs, bool sym) {
    std::vector<float> out(l.w.size());
    for (int64_t g = 0; g < l.k / gs; ++g) {
        IntGridQuantizer q(bits, sym);
        q.find_params(l.w.data(), l.k, l.n, g * gs, gs);
        for (int64_t r = 0; r < l.n; ++r)
            for (int64_t c = g * gs; c < (g + 1) * gs; ++c) {
                int32_t code;
                out[size_t(r * l.k + c)] = q.quantize(r, c, l.w[size_t(r * l.k + c)], code);
            }
    }
    return out;
}

std::vector<double> hessian(const Layer& l) {
    HessianAccumulator acc(l.k);
    acc.add(l.x.data(), l.t);
    return acc.finish();
}

TEST(Gptq, BeatsRtnOnLayerOutput) {
    const Layer l = make_layer(7);
    for (int bits : {2, 3, 4}) {
        for (bool act : {false, true}) {
            GptqOptions opt;
            opt.bits = bits;
            opt.group_size = 32;
            opt.sym = false;
            opt.desc_act = act;
            opt.block_size = 64;
            auto r = gptq_quantize(l.w.data(), l.n, l.k, hessian(l), opt);
            ASSERT_TRUE(r.ok()) << r.error().message;
            const double e_gptq = output_error(l, r->dequant);
            const double e_rtn = output_error(l, rtn(l, bits, 32, false));
            EXPECT_LT(e_gptq, 0.8 * e_rtn) << "bits " << bits << " act " << act;
        }
    }
}

TEST(Gptq, CodesScalesAndGidxReconstructDequant) {
    const Layer l = make_layer(3);
    for (bool act : {false, true}) {
        for (bool stat : {false, true}) {
            GptqOptions opt;
            opt.group_size = 32;
            opt.desc_act = act;
            opt.static_groups = stat;
            auto r = gptq_quantize(l.w.data(), l.n, l.k, hessian(l), opt);
            ASSERT_TRUE(r.ok());
            ASSERT_EQ(r->n_groups, 4);
            for (int64_t c = 0; c < l.k; ++c) {
                const int g = r->g_idx[size_t(c)];
                ASSERT_GE(g, 0);
                ASSERT_LT(g, 4);
                for (int64_t row = 0; row < l.n; ++row) {
                    const float s = r->scales[size_t(row * 4 + g)];
                    const int z = r->zeros[size_t(row * 4 + g)];
                    const float deq = s * float(r->codes[size_t(row * l.k + c)] - z);
                    ASSERT_FLOAT_EQ(deq, r->dequant[size_t(row * l.k + c)]) << c << " " << row;
                }
            }
            // Without act-order (or with static groups) the groups are the contiguous column ranges.
            if (!act || stat) {
                for (int64_t c = 0; c < l.k; ++c) EXPECT_EQ(r->g_idx[size_t(c)], c / 32);
            }
            // perm is a permutation.
            std::vector<int> seen(size_t(l.k), 0);
            for (int p : r->perm) seen[size_t(p)]++;
            for (int s : seen) ASSERT_EQ(s, 1);
        }
    }
}

TEST(Gptq, DeadColumnsAndPerChannel) {
    Layer l = make_layer(5);
    for (int64_t t = 0; t < l.t; ++t) l.x[size_t(t * l.k + 3)] = 0.0f; // input 3 never fires
    GptqOptions opt;
    opt.group_size = -1;
    auto r = gptq_quantize(l.w.data(), l.n, l.k, hessian(l), opt);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->n_groups, 1);
    for (int64_t row = 0; row < l.n; ++row) EXPECT_EQ(r->dequant[size_t(row * l.k + 3)], 0.0f);
}

TEST(Gptq, DampingGrowsForSingularHessian) {
    Layer l = make_layer(9, 8, 64);
    std::vector<double> h(size_t(64 * 64), 1.0); // all ones with a smaller diagonal entry: indefinite
    h[0] = 0.9;
    GptqOptions opt;
    opt.group_size = 64;
    opt.damp_percent = 1e-12;
    auto r = gptq_quantize(l.w.data(), l.n, l.k, h, opt);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_GT(r->damp_used, 1e-6);
}

TEST(Gptq, BadOptions) {
    Layer l = make_layer(1, 4, 96);
    GptqOptions opt;
    opt.group_size = 64; // does not divide 96
    auto r = gptq_quantize(l.w.data(), l.n, l.k, hessian(l), opt);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUsage);
    EXPECT_NE(r.error().message.find("does not divide"), std::string::npos);
    opt.group_size = 32;
    opt.bits = 5;
    r = gptq_quantize(l.w.data(), l.n, l.k, hessian(l), opt);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("bits"), std::string::npos);
}

} // namespace
} // namespace lowbit::quantize::gptq
