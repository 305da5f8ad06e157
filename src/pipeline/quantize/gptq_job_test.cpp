// SPDX-License-Identifier: MIT
// GPTQ streaming driver on seeded in-memory models: streamed Hessians == those of an all-in-memory forward
// with an observer (float inputs), true-sequential o_proj statistics == a forward over a model whose q/k/v are
// replaced by their quantized values, GPTQ beats RTN on the calibration logits, and the exported directory
// unpacks to the same linears.
#include "format/safetensors/safetensors_reader.h"
#include "model/arch/arch_list.h"
#include "model/memory_store.h"
#include "model/transformer.h"
#include "pipeline/calibrate/layer_view_store.h"
#include "pipeline/quantize/calib_testing.h"
#include "pipeline/quantize/gptq_job.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <random>
#include <unistd.h>

namespace lowbit::pipeline {
namespace {

using model::LinearId;

format::ModelConfig tiny_config() {
    return calib_testing::tiny_llama_config(64, 128, 2);
}

std::shared_ptr<model::MemoryStore> tiny_store(const format::ModelConfig& c) {
    auto s = model::make_synthetic_model(c, *model::find_arch("llama"), model::SourceFormat::kHf, DType::kF32, 99);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return *s;
}

using calib_testing::random_samples;

std::string module_name(int64_t layer, LinearId id) {
    return hf_layer_prefix(layer) + model::linear_hf_name(id);
}

// H of every (layer, linear) from full-model forwards with an observer.
std::map<std::string, quantize::CalibStats> full_forward_stats(std::shared_ptr<const format::TensorStore> store,
                                                               const format::ModelConfig& c,
                                                               const CalibSamples& samples) {
    auto t = model::Transformer::create(store, c, model::SourceFormat::kHf);
    EXPECT_TRUE(t.ok()) << t.error().message;
    std::map<int64_t, quantize::HessianSet> sets;
    (*t)->set_linear_observer([&](int64_t layer, LinearId id, const float* x, int64_t n, int64_t cols) {
        if (layer >= 0) sets[layer].add(int(id), x, n, cols);
    });
    std::vector<float> logits(samples[0].size() * size_t(c.vocab_size));
    for (const auto& s : samples) {
        auto cache = (*t)->make_cache(int64_t(s.size()));
        (*t)->forward(s, 0, cache, true, logits.data(), nullptr);
    }
    std::map<std::string, quantize::CalibStats> out;
    for (auto& [layer, hs] : sets)
        for (int id = 0; id <= int(LinearId::kDown); ++id) out[module_name(layer, LinearId(id))] = hs.stats(id);
    return out;
}

double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
    double worst = 0, scale = 0;
    for (double x : b) scale = std::max(scale, std::abs(x));
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
    return worst / scale;
}

GptqJobOptions base_options() {
    GptqJobOptions o;
    o.bits = 4, o.group_size = 32;
    return o;
}

TEST(GptqJob, StreamedHessiansEqualAllInMemoryForward) {
    const auto c = tiny_config();
    auto store = tiny_store(c);
    const auto samples = random_samples(3, 24, c.vocab_size, 5);
    GptqJobOptions o = base_options();
    o.true_sequential = false, o.propagate_quantized = false; // float inputs everywhere: same as one full forward
    std::map<std::string, quantize::CalibStats> streamed;
    o.on_stats = [&](const std::string& m, const quantize::CalibStats& s) { streamed[m] = s; };
    auto r = gptq_quantize_model(store, c, samples, o, nullptr);
    ASSERT_TRUE(r.ok()) << r.error().message;
    const auto ref = full_forward_stats(store, c, samples);
    ASSERT_EQ(streamed.size(), 14u);
    for (const auto& [m, s] : ref) {
        ASSERT_TRUE(streamed.count(m)) << m;
        EXPECT_EQ(streamed[m].n_tokens, 72) << m;
        EXPECT_LT(max_rel_diff(streamed[m].hessian, s.hessian), 1e-9) << m;
    }
    EXPECT_EQ(r->linears.size(), 14u);
    EXPECT_EQ(r->activation_bytes, uint64_t(3 * 24 * 64 * 4));
}

TEST(GptqJob, TrueSequentialSeesQuantizedEarlierGroups) {
    const auto c = tiny_config();
    auto store = tiny_store(c);
    const auto samples = random_samples(2, 20, c.vocab_size, 6);
    GptqJobOptions o = base_options();
    std::map<std::string, quantize::CalibStats> streamed;
    o.on_stats = [&](const std::string& m, const quantize::CalibStats& s) { streamed[m] = s; };
    auto r = gptq_quantize_model(store, c, samples, o, nullptr);
    ASSERT_TRUE(r.ok()) << r.error().message;
    // Reference: the float model with layer 0's q/k/v replaced by the quantized values.
    auto patched = std::make_shared<model::MemoryStore>(*store);
    for (LinearId id : {LinearId::kQ, LinearId::kK, LinearId::kV}) {
        const std::string m = module_name(0, id);
        const auto* info = store->find(m + ".weight");
        ASSERT_TRUE(
            patched->add(m + ".weight", DType::kF32, info->shape, scheme::gptq::dequantize(r->linears[m])).ok());
    }
    const auto ref = full_forward_stats(patched, c, samples);
    const std::string o0 = module_name(0, LinearId::kO);
    EXPECT_LT(max_rel_diff(streamed[o0].hessian, ref.at(o0).hessian), 1e-9);
    // ... and differs from the float model's (the test can fail if quantization were skipped).
    const auto float_ref = full_forward_stats(store, c, samples);
    EXPECT_GT(max_rel_diff(streamed[o0].hessian, float_ref.at(o0).hessian), 1e-4);
    // q/k/v of layer 0 see float inputs either way.
    const std::string q0 = module_name(0, LinearId::kQ);
    EXPECT_LT(max_rel_diff(streamed[q0].hessian, float_ref.at(q0).hessian), 1e-9);
}

// Mean squared logit error of a model against the float model on the samples.
double logit_mse(std::shared_ptr<const format::TensorStore> q, std::shared_ptr<const format::TensorStore> f,
                 const format::ModelConfig& c, const CalibSamples& samples) {
    auto tq = model::Transformer::create(q, c, model::SourceFormat::kHf);
    auto tf = model::Transformer::create(f, c, model::SourceFormat::kHf);
    EXPECT_TRUE(tq.ok() && tf.ok());
    double se = 0;
    int64_t n = 0;
    for (const auto& s : samples) {
        std::vector<float> a(s.size() * size_t(c.vocab_size)), b(a.size());
        auto ca = (*tq)->make_cache(int64_t(s.size())), cb = (*tf)->make_cache(int64_t(s.size()));
        (*tq)->forward(s, 0, ca, true, a.data(), nullptr);
        (*tf)->forward(s, 0, cb, true, b.data(), nullptr);
        for (size_t i = 0; i < a.size(); ++i) se += double(a[i] - b[i]) * (a[i] - b[i]);
        n += int64_t(a.size());
    }
    return se / double(n);
}

std::shared_ptr<model::MemoryStore> with_linears(const model::MemoryStore& base, const GptqModelResult& r) {
    auto out = std::make_shared<model::MemoryStore>(base);
    for (const auto& [m, lin] : r.linears)
        EXPECT_TRUE(
            out->add(m + ".weight", DType::kF32, Shape{lin.n_out, lin.n_in}, scheme::gptq::dequantize(lin)).ok());
    return out;
}

TEST(GptqJob, BeatsRoundToNearestOnCalibrationLogits) {
    const auto c = tiny_config();
    auto store = tiny_store(c);
    const auto samples = random_samples(4, 32, c.vocab_size, 7);
    GptqJobOptions o = base_options();
    o.bits = 3;
    auto gptq = gptq_quantize_model(store, c, samples, o, nullptr);
    ASSERT_TRUE(gptq.ok()) << gptq.error().message;
    // RTN: the same grid with an identity Hessian (no error feedback), per linear.
    GptqModelResult rtn;
    for (const auto& [m, lin] : gptq->linears) {
        const auto v = store->view(m + ".weight");
        ASSERT_TRUE(v.ok());
        std::vector<double> eye(size_t(lin.n_in * lin.n_in), 0.0);
        for (int64_t i = 0; i < lin.n_in; ++i) eye[size_t(i * lin.n_in + i)] = 1.0;
        quantize::gptq::GptqOptions g;
        g.bits = 3, g.group_size = 32, g.sym = true;
        auto q = quantize::gptq::gptq_quantize(v->as<float>(), lin.n_out, lin.n_in, eye, g);
        ASSERT_TRUE(q.ok());
        scheme::gptq::GptqLinear l = lin;
        l.codes = q->codes, l.scales = q->scales, l.zeros = q->zeros, l.g_idx = q->g_idx;
        rtn.linears[m] = l;
    }
    const double e_gptq = logit_mse(with_linears(*store, *gptq), store, c, samples);
    const double e_rtn = logit_mse(with_linears(*store, rtn), store, c, samples);
    EXPECT_LT(e_gptq, 0.8 * e_rtn) << "gptq " << e_gptq << " rtn " << e_rtn;
}

TEST(GptqJob, ExportUnpacksToTheSameLinears) {
    const auto c = tiny_config();
    auto store = tiny_store(c);
    const auto samples = random_samples(2, 16, c.vocab_size, 8);
    for (bool v2 : {false, true}) {
        GptqJobOptions o = base_options();
        o.desc_act = true, o.sym = false, o.gptq_v2 = v2;
        auto r = gptq_quantize_model(store, c, samples, o, nullptr);
        ASSERT_TRUE(r.ok()) << r.error().message;
        const auto dir = std::filesystem::temp_directory_path() / ("lowbit_gptq_job_" + std::to_string(getpid()));
        std::filesystem::create_directories(dir / "src");
        std::ofstream(dir / "src" / "config.json") << R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64})";
        QuantizeJobReport report;
        ASSERT_TRUE(write_gptq_checkpoint((dir / "out").string(), (dir / "src").string(), *store, *r, o, report).ok());
        auto st = safetensors::Store::open((dir / "out" / "model.safetensors").string());
        ASSERT_TRUE(st.ok()) << st.error().message;
        EXPECT_EQ((*st)->find("model.layers.0.self_attn.q_proj.weight"), nullptr);
        EXPECT_NE((*st)->find("model.embed_tokens.weight"), nullptr);
        const auto fmt = v2 ? scheme::gptq::GptqFormat::kV2 : scheme::gptq::GptqFormat::kV1;
        for (const auto& [m, lin] : r->linears) {
            std::vector<scheme::TensorRecord> recs;
            for (const char* suffix : {"qweight", "qzeros", "scales", "g_idx"}) {
                auto v = (*st)->view(m + "." + suffix);
                ASSERT_TRUE(v.ok()) << m << suffix;
                const auto* b = static_cast<const uint8_t*>(v->data);
                recs.push_back({suffix, v->dtype, v->shape, std::vector<uint8_t>(b, b + v->n_bytes())});
            }
            auto u = scheme::gptq::unpack(recs, fmt, 4, lin.n_out, lin.n_in);
            ASSERT_TRUE(u.ok()) << u.error().message;
            EXPECT_EQ(u->codes, lin.codes) << m;
            EXPECT_EQ(u->g_idx, lin.g_idx) << m;
            EXPECT_EQ(u->scales, lin.scales) << m;
            EXPECT_EQ(u->zeros, lin.zeros) << m; // v1 zero 0 wraps to 2^b-1 and back under the mask
        }
        std::ifstream cfg(dir / "out" / "config.json");
        std::string text((std::istreambuf_iterator<char>(cfg)), std::istreambuf_iterator<char>());
        EXPECT_NE(text.find("\"quant_method\": \"gptq\""), std::string::npos);
        EXPECT_NE(text.find(v2 ? "\"gptq_v2\"" : "\"checkpoint_format\": \"gptq\""), std::string::npos);
        EXPECT_NE(text.find("\"desc_act\": true"), std::string::npos);
        EXPECT_TRUE(std::filesystem::exists(dir / "out" / "quantize_config.json"));
        EXPECT_GT(report.n_bytes, 0u);
        std::filesystem::remove_all(dir);
    }
}

TEST(GptqJob, BadOptionsAreUsageErrors) {
    const auto c = tiny_config();
    auto store = tiny_store(c);
    const auto samples = random_samples(1, 8, c.vocab_size, 9);
    GptqJobOptions o = base_options();
    o.bits = 5;
    auto r = gptq_quantize_model(store, c, samples, o, nullptr);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUsage);
    EXPECT_NE(r.error().message.find("--bits"), std::string::npos);
    o = base_options();
    o.damp_percent = 0;
    EXPECT_FALSE(gptq_quantize_model(store, c, samples, o, nullptr).ok());
    EXPECT_FALSE(gptq_quantize_model(store, c, {}, base_options(), nullptr).ok());
}

} // namespace
} // namespace lowbit::pipeline
