// SPDX-License-Identifier: MIT
// GPU calibration layer (kernel/cuda/calib_layer.h) against the CPU forward (model::Transformer::run_layer) and
// the CPU Hessian (quantize::gptq::HessianAccumulator): seeded tiny models (GQA, Qwen2 q/k/v bias, chunking),
// lowbit-ref-30m layers 0 and 5, errors, and (LOWBIT_GPU_BENCH=1) timings of a 7B-shaped layer. Label gpu: every
// test skips without CUDA or without a device.
#include "format/hf/hf_model.h"
#include "kernel/cuda/calib_layer.h"
#include "kernel/cuda/cuda_backend.h"
#include "model/arch/arch_list.h"
#include "model/memory_store.h"
#include "model/transformer.h"
#include "quantize/gptq/gptq.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::pipeline {
namespace {

namespace kc = kernel::cuda;
using kc::Slot;

#define SKIP_WITHOUT_GPU()                                                                                             \
    do {                                                                                                               \
        if (!kc::compiled_with_cuda()) GTEST_SKIP() << "built without CUDA";                                           \
        auto n_ = kc::device_count();                                                                                  \
        if (!n_.ok() || *n_ == 0) GTEST_SKIP() << "no CUDA device: " << (n_.ok() ? "0 devices" : n_.error().message);  \
    } while (0)

constexpr std::array<Slot, 4> kGroups = {Slot::kQ, Slot::kO, Slot::kGate, Slot::kDown};
int group_index(Slot s) {
    return int(std::find(kGroups.begin(), kGroups.end(), kc::first_slot_of_group(s)) - kGroups.begin());
}

// ||a - b|| / ||b|| over the whole arrays.
double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    double num = 0, den = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        const double d = double(a[i]) - double(b[i]);
        if (!std::isfinite(a[i])) return INFINITY;
        num += d * d, den += double(b[i]) * double(b[i]);
    }
    return std::sqrt(num / den);
}

// max |a - b| / max |b| (every entry counts, so one bad row shows).
double max_err(const std::vector<double>& a, const std::vector<double>& b) {
    EXPECT_EQ(a.size(), b.size());
    double worst = 0, scale = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        if (!std::isfinite(a[i])) return INFINITY;
        worst = std::max(worst, std::abs(a[i] - b[i])), scale = std::max(scale, std::abs(b[i]));
    }
    return worst / scale;
}

std::vector<float> random_normal(int64_t n, uint32_t seed, float stddev = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, stddev);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = dist(rng);
    return v;
}

std::vector<float> dense(const kernel::WeightView& w) {
    std::vector<float> out(size_t(w.n_rows * w.n_cols));
    for (int64_t r = 0; r < w.n_rows; ++r) kernel::dequantize_row(w, r, out.data() + r * w.n_cols);
    return out;
}

const float* bias_or_null(const std::vector<float>& b) {
    return b.empty() ? nullptr : b.data();
}

kc::LayerDims dims_of(const model::Transformer& t) {
    const auto& c = t.config();
    kc::LayerDims d;
    d.hidden = c.hidden_size, d.n_heads = c.n_heads, d.n_kv_heads = c.n_kv_heads, d.head_dim = c.head_dim;
    d.ff = c.intermediate_size, d.rms_eps = c.rms_norm_eps, d.rope_inv_freq = t.inv_freq();
    return d;
}

// A GPU runner loaded with layer `il` of `t`.
std::unique_ptr<kc::CalibLayer> make_gpu_layer(const model::Transformer& t, int64_t il, int64_t n_samples,
                                               int64_t seqlen, kc::Precision precision) {
    auto r = kc::CalibLayer::create(dims_of(t), n_samples, seqlen, precision);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok()) return nullptr;
    auto layer = std::move(r).value();
    const model::LayerWeights& l = t.weights().layers[size_t(il)];
    const std::pair<Slot, std::pair<const kernel::WeightView*, const std::vector<float>*>> rows[] = {
        {Slot::kQ, {&l.wq, &l.bq}},         {Slot::kK, {&l.wk, &l.bk}},          {Slot::kV, {&l.wv, &l.bv}},
        {Slot::kO, {&l.wo, &l.bo}},         {Slot::kGate, {&l.w_gate, nullptr}}, {Slot::kUp, {&l.w_up, nullptr}},
        {Slot::kDown, {&l.w_down, nullptr}}};
    for (const auto& [slot, wb] : rows) {
        const auto w = dense(*wb.first);
        const Status st = layer->set_linear(slot, w.data(), wb.second ? bias_or_null(*wb.second) : nullptr);
        EXPECT_TRUE(st.ok()) << st.error().message;
    }
    const Status st = layer->set_norms(l.attn_norm.data(), l.ffn_norm.data());
    EXPECT_TRUE(st.ok()) << st.error().message;
    return layer;
}

// Hidden states after one layer plus the input of each linear group (all samples, in row order).
struct LayerRun {
    std::vector<float> out;
    std::array<std::vector<float>, 4> x; // kGroups order
};

LayerRun run_cpu(model::Transformer& t, int64_t il, const std::vector<float>& in, int64_t n_samples, int64_t seqlen,
                 ThreadPool* pool) {
    const int64_t h = t.config().hidden_size;
    LayerRun r;
    r.out = in;
    t.set_linear_observer([&](int64_t, model::LinearId id, const float* x, int64_t n, int64_t k) {
        const Slot s = Slot(int(id));
        if (kc::first_slot_of_group(s) == s)
            r.x[size_t(group_index(s))].insert(r.x[size_t(group_index(s))].end(), x, x + n * k);
    });
    for (int64_t s = 0; s < n_samples; ++s) {
        model::KvCache cache = t.make_cache(seqlen);
        t.run_layer(il, r.out.data() + s * seqlen * h, seqlen, 0, cache, pool);
    }
    t.set_linear_observer({});
    return r;
}

// GPU forward in place; observed group inputs copied to the host; Hessians accumulated on the runner's stream.
struct GpuRun {
    LayerRun run;
    std::array<std::vector<double>, 4> h, h_split; // finished DeviceHessians (kF64, kSplitTf32)
    int n_observer_calls = 0;
};

GpuRun run_gpu(kc::CalibLayer& layer, const std::vector<float>& in) {
    GpuRun g;
    const int64_t h = layer.dims().hidden;
    EXPECT_TRUE(layer.set_hidden(in.data(), int64_t(in.size()) / h).ok());
    std::array<std::unique_ptr<kc::DeviceHessian>, 4> hess, hess_split;
    const int64_t ks[] = {h, layer.dims().n_heads * layer.dims().head_dim, h, layer.dims().ff};
    for (int i = 0; i < 4; ++i) {
        auto r = kc::DeviceHessian::create(ks[i], layer.stream());
        auto r2 = kc::DeviceHessian::create(ks[i], layer.stream(), kc::HessianMath::kSplitTf32);
        EXPECT_TRUE(r.ok() && r2.ok());
        if (!r.ok() || !r2.ok()) return g;
        hess[size_t(i)] = std::move(r).value();
        hess_split[size_t(i)] = std::move(r2).value();
    }
    const Status st = layer.forward(true, [&](Slot s, const float* x, int64_t n, int64_t k) -> Status {
        ++g.n_observer_calls;
        const int gi = group_index(s);
        EXPECT_EQ(kGroups[size_t(gi)], s);
        EXPECT_EQ(k, ks[gi]);
        auto& dst = g.run.x[size_t(gi)];
        const size_t off = dst.size();
        dst.resize(off + size_t(n * k));
        LOWBIT_TRY(kc::copy_device_to_host(dst.data() + off, x, uint64_t(n * k) * sizeof(float)));
        LOWBIT_TRY(hess_split[size_t(gi)]->add(x, n));
        return hess[size_t(gi)]->add(x, n);
    });
    EXPECT_TRUE(st.ok()) << st.error().message;
    g.run.out.resize(in.size());
    EXPECT_TRUE(layer.get_hidden(g.run.out.data()).ok());
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(hess[size_t(i)]->n_samples(), int64_t(in.size()) / h);
        const Status hs = hess[size_t(i)]->to_host(g.h[size_t(i)]);
        EXPECT_TRUE(hs.ok()) << hs.error().message;
        const Status hs2 = hess_split[size_t(i)]->to_host(g.h_split[size_t(i)]);
        EXPECT_TRUE(hs2.ok()) << hs2.error().message;
    }
    return g;
}

std::vector<double> cpu_hessian(const std::vector<float>& x, int64_t k) {
    quantize::gptq::HessianAccumulator acc(k);
    acc.add(x.data(), int64_t(x.size()) / k);
    return acc.finish();
}

// GPU vs CPU on one layer: output, observer inputs and Hessians. Tolerances by precision.
void check_layer(model::Transformer& t, int64_t il, const std::vector<float>& in, int64_t n_samples, int64_t seqlen,
                 int64_t chunk, const std::string& label, ThreadPool* pool) {
    const LayerRun cpu = run_cpu(t, il, in, n_samples, seqlen, pool);
    for (kc::Precision p : {kc::Precision::kF32, kc::Precision::kTF32}) {
        const bool f32 = p == kc::Precision::kF32;
        SCOPED_TRACE(label + (f32 ? " f32" : " tf32"));
        auto layer = make_gpu_layer(t, il, n_samples, seqlen, p);
        ASSERT_TRUE(layer);
        ASSERT_TRUE(layer->set_chunk_samples(chunk).ok());
        const GpuRun g = run_gpu(*layer, in);
        const int64_t n_chunks = (n_samples + layer->chunk_samples() - 1) / layer->chunk_samples();
        EXPECT_EQ(g.n_observer_calls, 4 * n_chunks);
        const double e_out = rel_err(g.run.out, cpu.out);
        std::printf("%s %s: chunk %lld, output rel err %.3g", label.c_str(), f32 ? "f32 " : "tf32",
                    (long long)layer->chunk_samples(), e_out);
        EXPECT_LT(e_out, f32 ? 1e-5 : 5e-3);
        for (int i = 0; i < 4; ++i) {
            const double e_x = rel_err(g.run.x[size_t(i)], cpu.x[size_t(i)]);
            std::printf(", x[%s] %.3g", kc::slot_name(kGroups[size_t(i)]), e_x);
            EXPECT_LT(e_x, f32 ? 1e-5 : 1e-2) << kc::slot_name(kGroups[size_t(i)]);
            const int64_t k = int64_t(cpu.x[size_t(i)].size()) / (n_samples * seqlen);
            // The device Hessian is the CPU accumulator's function of the same rows (f64 both sides) ...
            const auto h_same = cpu_hessian(g.run.x[size_t(i)], k);
            const double e_same = max_err(g.h[size_t(i)], h_same), e_split = max_err(g.h_split[size_t(i)], h_same);
            EXPECT_LT(e_same, 1e-12) << kc::slot_name(kGroups[size_t(i)]);
            EXPECT_LT(e_split, 1e-5) << kc::slot_name(kGroups[size_t(i)]);
            // ... and in f32 mode also matches the Hessian of the CPU forward's inputs.
            if (f32) {
                const double e_cpu = max_err(g.h[size_t(i)], cpu_hessian(cpu.x[size_t(i)], k));
                std::printf(" H %.2g/%.2g split %.2g", e_same, e_cpu, e_split);
                EXPECT_LT(e_cpu, 1e-5) << kc::slot_name(kGroups[size_t(i)]);
            }
        }
        std::printf("\n");
    }
}

format::ModelConfig tiny_config(const std::string& arch, int64_t n_heads, int64_t n_kv_heads) {
    format::ModelConfig c;
    c.arch = arch;
    c.vocab_size = 50, c.hidden_size = 64, c.intermediate_size = 96, c.n_layers = 2;
    c.n_heads = n_heads, c.n_kv_heads = n_kv_heads, c.max_position_embeddings = 256, c.rope_theta = 10000.0f;
    c.attention_bias = arch == "qwen2";
    return c;
}

std::unique_ptr<model::Transformer> tiny_model(const format::ModelConfig& c, uint32_t seed) {
    auto store = model::make_synthetic_model(c, *model::find_arch(c.arch), model::SourceFormat::kHf, DType::kF32, seed);
    EXPECT_TRUE(store.ok()) << store.error().message;
    auto t = model::Transformer::create(*store, c, model::SourceFormat::kHf);
    EXPECT_TRUE(t.ok()) << t.error().message;
    return t.ok() ? std::move(t).value() : nullptr;
}

TEST(CalibLayerGpu, TinyLlamaGqaMatchesCpu) {
    SKIP_WITHOUT_GPU();
    auto t = tiny_model(tiny_config("llama", 4, 2), 11);
    ASSERT_TRUE(t);
    const int64_t n_samples = 3, seqlen = 37; // odd length, partial last chunk below
    ThreadPool pool(4);
    const auto in = random_normal(n_samples * seqlen * 64, 5);
    check_layer(*t, 1, in, n_samples, seqlen, 3, "tiny llama gqa", &pool);
    check_layer(*t, 0, in, n_samples, seqlen, 2, "tiny llama gqa chunk2", &pool);
}

TEST(CalibLayerGpu, TinyQwen2BiasMatchesCpu) {
    SKIP_WITHOUT_GPU();
    const auto c = tiny_config("qwen2", 4, 1);
    auto t = tiny_model(c, 12);
    ASSERT_TRUE(t);
    ASSERT_FALSE(t->weights().layers[0].bq.empty()) << "the fixture must have q/k/v biases";
    ThreadPool pool(4);
    const auto in = random_normal(2 * 50 * 64, 6);
    check_layer(*t, 0, in, 2, 50, 1, "tiny qwen2 bias", &pool);
}

TEST(CalibLayerGpu, StatisticsPassLeavesHiddenAndStopsEarly) {
    SKIP_WITHOUT_GPU();
    auto t = tiny_model(tiny_config("llama", 4, 2), 13);
    ASSERT_TRUE(t);
    auto layer = make_gpu_layer(*t, 0, 5, 16, kc::Precision::kF32);
    ASSERT_TRUE(layer);
    ASSERT_TRUE(layer->set_chunk_samples(2).ok());
    const auto in = random_normal(5 * 16 * 64, 7);
    ASSERT_TRUE(layer->set_hidden(in.data(), 5 * 16).ok());
    std::vector<Slot> seen;
    const auto obs = [&](Slot s, const float*, int64_t n, int64_t) -> Status {
        seen.push_back(s);
        EXPECT_TRUE(n == 2 * 16 || n == 16) << n;
        return ok_status();
    };
    ASSERT_TRUE(layer->forward(false, obs, Slot::kO).ok());
    const std::vector<Slot> expect = {Slot::kQ, Slot::kO, Slot::kQ, Slot::kO, Slot::kQ, Slot::kO};
    EXPECT_EQ(seen, expect);
    std::vector<float> back(in.size());
    ASSERT_TRUE(layer->get_hidden(back.data()).ok());
    EXPECT_EQ(back, in); // statistics-only: untouched, bit for bit
    // An observer error stops the pass and comes back.
    const Status err = layer->forward(false, [](Slot, const float*, int64_t, int64_t) -> Status {
        return make_error(ErrorCode::kBadInput, "observer says no");
    });
    ASSERT_FALSE(err.ok());
    EXPECT_EQ(err.error().message, "observer says no");
    // stop_after only makes sense without writing the output.
    const Status in_place_with_stop = layer->forward(true, {}, Slot::kQ);
    ASSERT_FALSE(in_place_with_stop.ok());
    EXPECT_EQ(in_place_with_stop.error().code, ErrorCode::kUsage);
}

TEST(CalibLayerGpu, UsageErrorsNameTheProblem) {
    SKIP_WITHOUT_GPU();
    kc::LayerDims d;
    d.hidden = 64, d.n_heads = 4, d.n_kv_heads = 3, d.head_dim = 16, d.ff = 96, d.rope_inv_freq.assign(8, 1.0f);
    auto bad = kc::CalibLayer::create(d, 2, 8, kc::Precision::kF32);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, ErrorCode::kUsage);
    EXPECT_NE(bad.error().message.find("n_kv_heads 3"), std::string::npos) << bad.error().message;
    d.n_kv_heads = 2;
    d.rope_inv_freq.assign(7, 1.0f);
    bad = kc::CalibLayer::create(d, 2, 8, kc::Precision::kF32);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("rope_inv_freq"), std::string::npos) << bad.error().message;
    d.rope_inv_freq.assign(8, 1.0f);
    auto ok = kc::CalibLayer::create(d, 2, 8, kc::Precision::kF32);
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    const Status no_weights = (*ok)->forward(true, {});
    ASSERT_FALSE(no_weights.ok());
    EXPECT_NE(no_weights.error().message.find("q_proj weights were never set"), std::string::npos);
    std::vector<float> rows(size_t(3 * 8 * 64), 0.5f);
    const Status wrong_rows = (*ok)->set_hidden(rows.data(), 3 * 8);
    ASSERT_FALSE(wrong_rows.ok());
    EXPECT_NE(wrong_rows.error().message.find("expected 2 x 8 = 16 rows, got 24"), std::string::npos);
    auto h = kc::DeviceHessian::create(16);
    ASSERT_TRUE(h.ok());
    auto empty = (*h)->finish_device();
    ASSERT_FALSE(empty.ok());
    EXPECT_EQ(empty.error().code, ErrorCode::kBadInput);
}

// Worst |a - b| / sqrt(H_ii H_jj) over all entries (errors relative to the scale of their row and column).
double normalized_err(const std::vector<double>& a, const std::vector<double>& ref, int64_t k) {
    double worst = 0;
    for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j) {
            const double d = std::abs(a[size_t(i * k + j)] - ref[size_t(i * k + j)]);
            const double s = std::sqrt(ref[size_t(i * k + i)] * ref[size_t(j * k + j)]);
            worst = std::max(worst, std::isfinite(d) ? d / s : INFINITY);
        }
    return worst;
}

// Both Hessian modes on activation-like rows (non-zero means, a few outlier channels 50x), k not a multiple of 32,
// several adds crossing the 4096-row block, an own stream, and reset().
TEST(CalibLayerGpu, DeviceHessianMatchesCpuAccumulator) {
    SKIP_WITHOUT_GPU();
    const int64_t k = 300, n1 = 5000, n2 = 123;
    auto x = random_normal((n1 + n2) * k, 31);
    for (int64_t r = 0; r < n1 + n2; ++r)
        for (int64_t c = 0; c < k; ++c) {
            float& v = x[size_t(r * k + c)];
            v = v + 0.3f * float(c % 7);
            if (c % 97 == 5) v *= 50.0f;
        }
    auto dx = kc::device_floats((n1 + n2) * k);
    ASSERT_TRUE(dx.ok()) << dx.error().message;
    ASSERT_TRUE(kc::copy_host_to_device(dx->get(), x.data(), x.size() * sizeof(float)).ok());
    quantize::gptq::HessianAccumulator acc(k);
    acc.add(x.data(), n1 + n2);
    const auto ref = acc.finish();
    for (kc::HessianMath math : {kc::HessianMath::kF64, kc::HessianMath::kSplitTf32}) {
        const bool f64 = math == kc::HessianMath::kF64;
        auto h = kc::DeviceHessian::create(k, nullptr, math);
        ASSERT_TRUE(h.ok()) << h.error().message;
        ASSERT_TRUE((*h)->add(dx->get(), 100).ok()); // thrown away by reset()
        ASSERT_TRUE((*h)->reset().ok());
        ASSERT_TRUE((*h)->add(dx->get(), n1).ok());
        ASSERT_TRUE((*h)->add(dx->get() + n1 * k, n2).ok());
        EXPECT_EQ((*h)->n_samples(), n1 + n2);
        std::vector<double> got;
        ASSERT_TRUE((*h)->to_host(got).ok());
        const double e_max = max_err(got, ref), e_norm = normalized_err(got, ref, k);
        std::printf("DeviceHessian %s: max err %.3g, normalized %.3g\n", f64 ? "f64  " : "split", e_max, e_norm);
        EXPECT_LT(e_max, f64 ? 1e-12 : 5e-6);
        EXPECT_LT(e_norm, f64 ? 1e-12 : 2e-5);
        for (int64_t i = 0; i < k; ++i) // symmetric to the bit
            for (int64_t j = 0; j < i; ++j) ASSERT_EQ(got[size_t(i * k + j)], got[size_t(j * k + i)]);
    }
}

// lowbit-ref-30m (bf16, GQA 8/4): layer 0 on token embeddings, layer 5 on the output of layers 0..4 (run on the
// GPU in f32, so the CPU only runs the layers it checks).
TEST(CalibLayerGpu, RefModelLayers0And5MatchCpu) {
    SKIP_WITHOUT_GPU();
    const char* root = std::getenv("LOWBIT_SOURCE_DIR"); // the device machine runs a copy of the tree elsewhere
    auto m = hf::open_hf_model(std::string(root ? root : LOWBIT_SOURCE_DIR) + "/models/lowbit-ref-30m");
    ASSERT_TRUE(m.ok()) << m.error().message;
    std::shared_ptr<const format::TensorStore> store(std::move(m->store));
    auto tr = model::Transformer::create(store, m->config, model::SourceFormat::kHf);
    ASSERT_TRUE(tr.ok()) << tr.error().message;
    model::Transformer& t = **tr;
    const int64_t n_samples = 3, seqlen = 96, h = t.config().hidden_size;
    std::vector<int32_t> tokens(size_t(n_samples * seqlen));
    std::mt19937 rng(21);
    for (auto& id : tokens) id = int32_t(rng() % uint32_t(t.config().vocab_size));
    std::vector<float> hidden(tokens.size() * size_t(h));
    t.embed(tokens, hidden.data());
    ThreadPool pool(8);
    check_layer(t, 0, hidden, n_samples, seqlen, 2, "ref-30m layer 0", &pool);
    for (int64_t il = 0; il < 5; ++il) {
        auto layer = make_gpu_layer(t, il, n_samples, seqlen, kc::Precision::kF32);
        ASSERT_TRUE(layer);
        ASSERT_TRUE(layer->set_hidden(hidden.data(), n_samples * seqlen).ok());
        ASSERT_TRUE(layer->forward(true, {}).ok());
        ASSERT_TRUE(layer->get_hidden(hidden.data()).ok());
    }
    check_layer(t, 5, hidden, n_samples, seqlen, 3, "ref-30m layer 5", &pool);
}

// Uniform values of standard deviation `stddev` (xorshift: fills hundreds of millions of floats quickly).
void fill_uniform(std::vector<float>& v, uint64_t seed, float stddev, float mean = 0.0f) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    const float a = stddev * std::sqrt(3.0f);
    for (auto& f : v) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        f = mean + a * (float(x >> 40) * (2.0f / float(1 << 24)) - 1.0f);
    }
}

double seconds_of(const std::function<void()>& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median_seconds(int reps, const std::function<void()>& fn) {
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) t.push_back(seconds_of(fn));
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

// A Llama-2-7B-shaped layer (hidden 4096, 32 heads, ff 11008) over LOWBIT_GPU_BENCH_SAMPLES (16) x 2048 tokens.
// Prints forward times (TF32 and F32), chunk sizes, Hessian costs and the per-model extrapolation to 128 samples.
TEST(CalibLayerGpu, Bench7BLayer) {
    SKIP_WITHOUT_GPU();
    if (!std::getenv("LOWBIT_GPU_BENCH")) GTEST_SKIP() << "set LOWBIT_GPU_BENCH=1 to time a 7B-shaped layer";
    const char* ns = std::getenv("LOWBIT_GPU_BENCH_SAMPLES");
    const int64_t n_samples = ns ? std::atoll(ns) : 16, L = 2048, n_layers = 32;
    kc::LayerDims d;
    d.hidden = 4096, d.n_heads = 32, d.n_kv_heads = 32, d.head_dim = 128, d.ff = 11008;
    for (int64_t i = 0; i < d.head_dim / 2; ++i)
        d.rope_inv_freq.push_back(float(std::pow(10000.0, -2.0 * double(i) / double(d.head_dim))));
    const int64_t q = d.n_heads * d.head_dim, kv = d.n_kv_heads * d.head_dim, nt = n_samples * L;
    const double flops = 2.0 * double(nt) * double(d.hidden * (q + 2 * kv) + q * d.hidden + 3 * d.ff * d.hidden) +
                         4.0 * double(n_samples) * double(L) * double(L) * double(q);
    const double scale = 128.0 / double(n_samples);
    std::vector<float> hidden(size_t(nt * d.hidden));
    fill_uniform(hidden, 1, 1.0f);
    auto make = [&](kc::Precision p) {
        auto r = kc::CalibLayer::create(d, n_samples, L, p);
        EXPECT_TRUE(r.ok()) << r.error().message;
        if (!r.ok()) return std::unique_ptr<kc::CalibLayer>();
        auto layer = std::move(r).value();
        uint64_t seed = 10;
        for (int s = 0; s < kc::kNumSlots; ++s) {
            const bool down = Slot(s) == Slot::kDown, o = Slot(s) == Slot::kO;
            const int64_t in = down ? d.ff : o ? q : d.hidden;
            const int64_t out = (Slot(s) == Slot::kQ || o || down)                 ? (o || down ? d.hidden : q)
                                : (Slot(s) == Slot::kGate || Slot(s) == Slot::kUp) ? d.ff
                                                                                   : kv;
            std::vector<float> w(size_t(out * in));
            fill_uniform(w, ++seed, 1.0f / std::sqrt(float(in)));
            EXPECT_TRUE(layer->set_linear(Slot(s), w.data(), nullptr).ok());
        }
        std::vector<float> n1(size_t(d.hidden)), n2(size_t(d.hidden));
        fill_uniform(n1, 90, 0.1f, 1.0f), fill_uniform(n2, 91, 0.1f, 1.0f);
        EXPECT_TRUE(layer->set_norms(n1.data(), n2.data()).ok());
        EXPECT_TRUE(layer->set_hidden(hidden.data(), nt).ok());
        return layer;
    };
    auto layer = make(kc::Precision::kTF32);
    ASSERT_TRUE(layer);
    auto fwd = [&](bool in_place, const kc::CalibLayer::Observer& obs) {
        const Status st = layer->forward(in_place, obs);
        ASSERT_TRUE(st.ok()) << st.error().message;
    };
    auto info = kc::device_info(0);
    std::printf("device: %s\n", info.ok() ? info->name.c_str() : "?");
    std::printf("7B layer bench: %lld samples x %lld tokens, %.2f TFLOP per forward\n", (long long)n_samples,
                (long long)L, flops * 1e-12);
    auto report = [&](const char* what, double s) {
        std::printf("  %-44s %8.1f ms  %6.1f TFLOP/s  x128 samples: %7.2f s/layer, %6.1f s/32 layers\n", what, s * 1e3,
                    flops / s * 1e-12, s * scale, s * scale * double(n_layers));
    };
    fwd(false, {}); // warm-up: cuBLAS heuristics, module load
    const int64_t default_chunk = layer->chunk_samples();
    report(("tf32 forward (stats pass), chunk " + std::to_string(default_chunk)).c_str(),
           median_seconds(3, [&] { fwd(false, {}); }));
    report("tf32 forward in place", seconds_of([&] { fwd(true, {}); }));
    for (int64_t c : {int64_t(1), int64_t(4)}) {
        ASSERT_TRUE(layer->set_chunk_samples(c).ok());
        fwd(false, {});
        report(("tf32 forward, chunk " + std::to_string(layer->chunk_samples())).c_str(),
               seconds_of([&] { fwd(false, {}); }));
    }
    ASSERT_TRUE(layer->set_chunk_samples(default_chunk).ok());
    std::printf("  device bytes (weights + hidden + scratch, chunk %lld): %.2f GiB\n", (long long)default_chunk,
                double(layer->device_bytes()) / (1 << 30));
    // Stats pass with the four Hessians (q|k|v, o, gate|up: k = 4096; down: k = 11008), in both modes.
    const int64_t ks[] = {d.hidden, q, d.hidden, d.ff};
    std::vector<double> down_h[2]; // the down_proj Hessian of each mode (same rows): split vs f64 at full size
    for (kc::HessianMath math : {kc::HessianMath::kF64, kc::HessianMath::kSplitTf32}) {
        const char* mname = math == kc::HessianMath::kF64 ? "f64 dsyrk" : "split-tf32";
        std::array<std::unique_ptr<kc::DeviceHessian>, 4> hess;
        uint64_t hbytes = 0;
        for (int i = 0; i < 4; ++i) {
            auto r = kc::DeviceHessian::create(ks[i], layer->stream(), math);
            ASSERT_TRUE(r.ok()) << r.error().message;
            hess[size_t(i)] = std::move(r).value();
        }
        std::array<double, 4> t_add{};
        const auto obs = [&](Slot s, const float* x, int64_t n, int64_t) -> Status {
            return hess[size_t(group_index(s))]->add(x, n);
        };
        fwd(false, obs);
        report((std::string("tf32 forward + 4 Hessians, ") + mname).c_str(), seconds_of([&] { fwd(false, obs); }));
        // Each Hessian alone (its group's observer only, then stop): the add cost over the partial pass.
        for (int i = 0; i < 4; ++i) {
            const auto one = [&](Slot s, const float* x, int64_t n, int64_t) -> Status {
                return group_index(s) == i ? hess[size_t(i)]->add(x, n) : ok_status();
            };
            const auto none = [&](Slot, const float*, int64_t, int64_t) -> Status { return ok_status(); };
            const double with = seconds_of([&] { ASSERT_TRUE(layer->forward(false, one, kGroups[size_t(i)]).ok()); });
            const double without =
                seconds_of([&] { ASSERT_TRUE(layer->forward(false, none, kGroups[size_t(i)]).ok()); });
            t_add[size_t(i)] = with - without;
        }
        double t_finish = 0;
        for (auto& hh : hess) {
            t_finish += seconds_of([&] { ASSERT_TRUE(hh->finish_device().ok()); });
            hbytes += hh->device_bytes();
        }
        std::printf("  Hessian add (%s) per %lld samples: q|k|v %.1f ms, o %.1f ms, gate|up %.1f ms, down %.1f ms;"
                    " finish all %.1f ms; Hessians hold %.2f GiB\n",
                    mname, (long long)n_samples, t_add[0] * 1e3, t_add[1] * 1e3, t_add[2] * 1e3, t_add[3] * 1e3,
                    t_finish * 1e3, double(hbytes) / (1 << 30));
        ASSERT_TRUE(hess[3]->to_host(down_h[math == kc::HessianMath::kF64 ? 0 : 1]).ok());
    }
    const double e_split = max_err(down_h[1], down_h[0]), e_norm = normalized_err(down_h[1], down_h[0], d.ff);
    std::printf("  split-tf32 vs f64 down_proj Hessian (k %lld): max err %.3g, normalized %.3g\n", (long long)d.ff,
                e_split, e_norm);
    EXPECT_LT(e_split, 1e-4); // measured 2.8e-5 on an H200 (f32 tensor-core sums over 4096-row blocks)
    std::vector<float> out(size_t(d.hidden));
    ASSERT_TRUE(kc::copy_device_to_host(out.data(), layer->device_hidden(), out.size() * sizeof(float)).ok());
    for (float v : out) ASSERT_TRUE(std::isfinite(v));
    layer.reset();
    layer = make(kc::Precision::kF32);
    ASSERT_TRUE(layer);
    fwd(false, {});
    report("f32 forward (exact GEMMs)", seconds_of([&] { fwd(false, {}); }));
}

} // namespace
} // namespace lowbit::pipeline
