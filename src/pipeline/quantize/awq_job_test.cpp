// SPDX-License-Identifier: MIT
// AWQ streaming driver on seeded in-memory models: folding the chosen scales leaves the float model's logits
// unchanged, the four (or, with GQA, three) scalable groups are searched, the quantized model beats RTN on the
// calibration logits when some hidden channels are large, the in-memory result round-trips its codes, bad options.
#include "model/arch/arch_list.h"
#include "model/memory_store.h"
#include "model/transformer.h"
#include "pipeline/calibrate/layer_view_store.h"
#include "pipeline/quantize/awq_job.h"
#include "pipeline/quantize/calib_testing.h"

#include <cmath>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::pipeline {
namespace {

format::ModelConfig tiny_config(int64_t n_kv_heads) {
    return calib_testing::tiny_llama_config(64, 128, n_kv_heads);
}

// A seeded synthetic model whose norm weights make a few hidden channels ~12x larger (AWQ's salient channels).
std::shared_ptr<model::MemoryStore> tiny_store(const format::ModelConfig& c, bool outliers) {
    auto s = model::make_synthetic_model(c, *model::find_arch("llama"), model::SourceFormat::kHf, DType::kF32, 17);
    EXPECT_TRUE(s.ok()) << s.error().message;
    if (!outliers) return *s;
    for (int64_t l = 0; l < c.n_layers; ++l)
        for (const char* norm : {"input_layernorm.weight", "post_attention_layernorm.weight"}) {
            const std::string name = hf_layer_prefix(l) + norm;
            auto v = (*s)->view(name);
            std::vector<float> w(static_cast<const float*>(v->data), static_cast<const float*>(v->data) + 64);
            for (int64_t ch : {3, 17, 40}) w[size_t(ch)] *= 12.0f;
            EXPECT_TRUE((*s)->add(name, DType::kF32, Shape{64}, w).ok());
        }
    return *s;
}

using calib_testing::random_samples;

std::vector<float> logits(std::shared_ptr<const format::TensorStore> store, const format::ModelConfig& c,
                          const CalibSamples& samples) {
    auto t = model::Transformer::create(store, c, model::SourceFormat::kHf);
    EXPECT_TRUE(t.ok()) << t.error().message;
    std::vector<float> all;
    for (const auto& s : samples) {
        std::vector<float> l(s.size() * size_t(c.vocab_size));
        auto cache = (*t)->make_cache(int64_t(s.size()));
        (*t)->forward(s, 0, cache, true, l.data(), nullptr);
        all.insert(all.end(), l.begin(), l.end());
    }
    return all;
}

double mse(const std::vector<float>& a, const std::vector<float>& b) {
    double se = 0;
    for (size_t i = 0; i < a.size(); ++i) se += double(a[i] - b[i]) * (a[i] - b[i]);
    return se / double(a.size());
}

double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::fabs(a[i] - b[i])));
    for (float v : b) scale = std::max(scale, double(std::fabs(v)));
    return worst / scale;
}

AwqJobOptions base_options() {
    AwqJobOptions o;
    o.bits = 4, o.group_size = 32;
    return o;
}

TEST(AwqJob, FoldedScalesLeaveTheFloatModelUnchanged) {
    const auto c = tiny_config(4); // no GQA: the v_proj -> o_proj group is searched and folded too
    auto store = tiny_store(c, true);
    const auto samples = random_samples(3, 24, c.vocab_size, 5);
    AwqJobOptions o = base_options();
    o.fold_only = true;
    std::map<std::string, double> ratios;
    o.on_scales = [&](const std::string& prev, const quantize::awq::ScaleSearch& s) { ratios[prev] = s.best_ratio; };
    auto r = awq_quantize_model(store, c, samples, o, nullptr);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(ratios.size(), 8u); // 4 groups x 2 layers
    EXPECT_TRUE(ratios.count("model.layers.1.self_attn.v_proj"));
    double nonzero = 0;
    for (const auto& [prev, ratio] : ratios) nonzero += ratio > 0;
    EXPECT_GT(nonzero, 0) << "every group chose ratio 0: the folding test would not test anything";
    EXPECT_EQ(r->folded.size(), 14u);
    EXPECT_EQ(r->replaced.size(), 4u); // two norms per layer (no v bias in llama)
    const auto folded = make_dequantized_store(store, *r);
    // The folded weights really differ from the originals ...
    auto fv = folded->view("model.layers.0.input_layernorm.weight");
    auto ov = store->view("model.layers.0.input_layernorm.weight");
    double diff = 0;
    for (int i = 0; i < 64; ++i)
        diff = std::max(
            diff, double(std::fabs(static_cast<const float*>(fv->data)[i] - static_cast<const float*>(ov->data)[i])));
    EXPECT_GT(diff, 1e-3);
    // ... and the float model computes the same logits.
    const auto test = random_samples(2, 20, c.vocab_size, 9);
    EXPECT_LT(max_rel(logits(folded, c, test), logits(store, c, test)), 1e-5);
}

TEST(AwqJob, QuantizedModelBeatsRtnAndRoundTripsCodes) {
    const auto c = tiny_config(2); // GQA: v [32, 64] vs o [64, 64] -> no v_proj -> o_proj group (AutoAWQ)
    auto store = tiny_store(c, true);
    const auto samples = random_samples(4, 32, c.vocab_size, 6);
    AwqJobOptions o = base_options();
    o.bits = 3;
    std::map<std::string, double> ratios;
    o.on_scales = [&](const std::string& prev, const quantize::awq::ScaleSearch& s) { ratios[prev] = s.best_ratio; };
    auto r = awq_quantize_model(store, c, samples, o, nullptr);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(ratios.size(), 6u);
    EXPECT_FALSE(ratios.count("model.layers.0.self_attn.v_proj"));
    ASSERT_EQ(r->linears.size(), 14u);
    for (const auto& [module, lin] : r->linears) {
        EXPECT_EQ(lin.bits, 3);
        EXPECT_EQ(lin.codes.size(), size_t(lin.n_out * lin.n_in));
        EXPECT_EQ(lin.scales.size(), size_t(lin.n_out * lin.n_in / 32));
        for (int q : lin.codes) ASSERT_TRUE(q >= 0 && q < 8) << module;
    }
    // RTN reference: every linear pseudo-quantized as is (same bits, group, asymmetric).
    std::map<std::string, std::vector<float>> rtn_values;
    for (const auto& [module, lin] : r->linears) {
        auto v = store->view(module + ".weight");
        std::vector<float> w(static_cast<const float*>(v->data),
                             static_cast<const float*>(v->data) + lin.n_out * lin.n_in);
        quantize::awq::pseudo_quantize(w.data(), lin.n_out, lin.n_in, awq_options(o), true);
        rtn_values[module] = std::move(w);
    }
    auto rtn = std::make_shared<model::MemoryStore>(*store);
    for (auto& [module, w] : rtn_values) {
        const auto* info = store->find(module + ".weight");
        ASSERT_TRUE(rtn->add(module + ".weight", DType::kF32, info->shape, w).ok());
    }
    const auto test = random_samples(3, 24, c.vocab_size, 10);
    const auto ref = logits(store, c, test);
    const double e_awq = mse(logits(make_dequantized_store(store, *r), c, test), ref);
    const double e_rtn = mse(logits(rtn, c, test), ref);
    EXPECT_LT(e_awq, 0.8 * e_rtn) << "awq " << e_awq << " rtn " << e_rtn;
}

TEST(AwqJob, DirectAttentionBlockEqualsTheLayerPath) {
    for (int64_t n_kv : {4, 2}) {
        const auto c = tiny_config(n_kv);
        auto store = tiny_store(c, true);
        const auto samples = random_samples(2, 24, c.vocab_size, 8);
        std::map<std::string, std::vector<double>> losses[2];
        for (int via_layer = 0; via_layer < 2; ++via_layer) {
            AwqJobOptions o = base_options();
            o.attention_via_layer = via_layer == 1;
            o.on_scales = [&](const std::string& prev, const quantize::awq::ScaleSearch& s) {
                losses[via_layer][prev] = s.losses;
            };
            auto r = awq_quantize_model(store, c, samples, o, nullptr);
            ASSERT_TRUE(r.ok()) << r.error().message;
        }
        for (const char* prev : {"model.layers.0.input_layernorm", "model.layers.1.input_layernorm"}) {
            const auto &a = losses[0][prev], &b = losses[1][prev];
            ASSERT_EQ(a.size(), 20u);
            ASSERT_EQ(b.size(), 20u);
            for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4 * b[i]) << prev << " ratio " << i;
        }
    }
}

TEST(AwqJob, QuantizedPropagationAndNoClipAlsoRun) {
    const auto c = tiny_config(2);
    auto store = tiny_store(c, false);
    const auto samples = random_samples(2, 16, c.vocab_size, 7);
    AwqJobOptions o = base_options();
    o.propagate_quantized = true, o.clip = false, o.zero_point = false;
    auto r = awq_quantize_model(store, c, samples, o, nullptr);
    ASSERT_TRUE(r.ok()) << r.error().message;
    for (const auto& [module, lin] : r->linears)
        for (int32_t z : lin.zeros) ASSERT_EQ(z, 8) << module; // symmetric: implicit zero 2^(b-1)
}

TEST(AwqJob, BadOptionsAreErrors) {
    const auto c = tiny_config(2);
    auto store = tiny_store(c, false);
    const auto samples = random_samples(1, 8, c.vocab_size, 1);
    AwqJobOptions o = base_options();
    o.bits = 5;
    auto r = awq_quantize_model(store, c, samples, o, nullptr);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUsage);
    EXPECT_NE(r.error().message.find("bits"), std::string::npos) << r.error().message;
    o = base_options();
    o.group_size = 48; // 64 % 48 != 0
    r = awq_quantize_model(store, c, samples, o, nullptr);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUsage);
    EXPECT_NE(r.error().message.find("divide"), std::string::npos) << r.error().message;
    r = awq_quantize_model(store, c, {}, base_options(), nullptr);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUsage);
}

} // namespace
} // namespace lowbit::pipeline
