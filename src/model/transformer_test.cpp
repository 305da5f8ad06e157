// SPDX-License-Identifier: MIT
// Forward-pass invariants on seeded in-memory models: KV-cache decode == full recompute, batched prefill ==
// token by token, cpu == ref back end, GGUF naming + permuted Q/K + interleaved RoPE == HF naming + rotate-half,
// and binding errors that name the tensor.
#include "model/arch/arch_list.h"
#include "model/memory_store.h"
#include "model/rope_freqs.h"
#include "model/transformer.h"

#include <cmath>
#include <gtest/gtest.h>
#include <numeric>

namespace lowbit::model {
namespace {

format::ModelConfig tiny_config(const std::string& arch = "llama") {
    format::ModelConfig c;
    c.arch = arch;
    c.vocab_size = 61, c.hidden_size = 48, c.intermediate_size = 80, c.n_layers = 2;
    c.n_heads = 6, c.n_kv_heads = 2, c.max_position_embeddings = 128, c.rope_theta = 10000.0f;
    return c;
}

std::vector<int32_t> prompt(int64_t n, int64_t vocab) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t((i * 37 + 5) % vocab);
    return t;
}

std::unique_ptr<Transformer> build(const format::ModelConfig& c, SourceFormat src = SourceFormat::kHf,
                                   DType dtype = DType::kF32, kernel::Backend be = kernel::Backend::kCpu) {
    auto store = make_synthetic_model(c, *find_arch(c.arch), src, dtype, 1234);
    EXPECT_TRUE(store.ok()) << store.error().message;
    auto t = Transformer::create(*store, c, src, be);
    EXPECT_TRUE(t.ok()) << t.error().message;
    return std::move(t).value();
}

// max over rows of ||a - b|| / ||b||, rows of length n.
double max_rel_err(const float* a, const float* b, int64_t rows, int64_t n) {
    double worst = 0;
    for (int64_t r = 0; r < rows; ++r) {
        double num = 0, den = 0;
        for (int64_t i = 0; i < n; ++i) {
            const double d = double(a[r * n + i]) - b[r * n + i];
            num += d * d, den += double(b[r * n + i]) * b[r * n + i];
        }
        worst = std::max(worst, std::sqrt(num / den));
    }
    return worst;
}

std::vector<float> all_logits(Transformer& t, const std::vector<int32_t>& tokens, ThreadPool* pool) {
    auto cache = t.make_cache(64);
    std::vector<float> out(tokens.size() * size_t(t.config().vocab_size));
    t.forward(tokens, 0, cache, true, out.data(), pool);
    return out;
}

TEST(Transformer, DecodeWithCacheEqualsFullRecompute) {
    ThreadPool pool(2);
    for (const ArchDesc* desc : all_archs()) { // every row of the arch table
        const std::string arch(desc->name);
        auto t = build(tiny_config(arch));
        const int64_t v = t->config().vocab_size, n = 20;
        const auto tokens = prompt(n, v);
        // Prefill 12 tokens, then decode 8 one at a time with the cache.
        auto cache = t->make_cache(64);
        std::vector<float> decoded(size_t(n * v));
        t->forward(std::span(tokens).first(12), 0, cache, true, decoded.data(), &pool);
        for (int64_t i = 12; i < n; ++i)
            t->forward(std::span(tokens).subspan(size_t(i), 1), i, cache, false, decoded.data() + i * v, &pool);
        // Full recompute of every prefix from an empty cache, last logits only.
        std::vector<float> full(size_t(n * v));
        for (int64_t i = 0; i < n; ++i) {
            auto fresh = t->make_cache(64);
            t->forward(std::span(tokens).first(size_t(i + 1)), 0, fresh, false, full.data() + i * v, &pool);
        }
        EXPECT_LT(max_rel_err(decoded.data(), full.data(), n, v), 1e-5) << arch;
    }
}

TEST(Transformer, BatchedPrefillEqualsTokenByToken) {
    ThreadPool pool(2);
    for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
        auto t = build(tiny_config(), SourceFormat::kHf, dt);
        const int64_t v = t->config().vocab_size, n = 17; // > cpu::kGemmMinRows: GEMM path vs GEMV path
        const auto tokens = prompt(n, v);
        const auto batched = all_logits(*t, tokens, &pool);
        auto cache = t->make_cache(64);
        std::vector<float> one(size_t(n * v));
        for (int64_t i = 0; i < n; ++i)
            t->forward(std::span(tokens).subspan(size_t(i), 1), i, cache, true, one.data() + i * v, &pool);
        EXPECT_LT(max_rel_err(one.data(), batched.data(), n, v), 1e-5) << dtype_name(dt);
    }
}

TEST(Transformer, CpuBackendMatchesRef) {
    ThreadPool pool(2);
    for (const ArchDesc* desc : all_archs()) { // every row of the arch table
        const std::string arch(desc->name);
        auto c = tiny_config(arch);
        c.tie_word_embeddings = arch == "qwen2";
        auto fast = build(c, SourceFormat::kHf, DType::kF16, kernel::Backend::kCpu);
        auto ref = build(c, SourceFormat::kHf, DType::kF16, kernel::Backend::kRef);
        const auto tokens = prompt(19, c.vocab_size);
        const auto a = all_logits(*fast, tokens, &pool), b = all_logits(*ref, tokens, nullptr);
        EXPECT_LT(max_rel_err(a.data(), b.data(), 19, c.vocab_size), 1e-5) << arch;
    }
}

// llama.cpp's convert_hf_to_gguf.py: w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2).reshape(rows, cols).
std::vector<float> permute_rows(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t n_head) {
    std::vector<float> out(w.size());
    const int64_t half = rows / n_head / 2;
    for (int64_t h = 0; h < n_head; ++h)
        for (int64_t j = 0; j < half; ++j)
            for (int64_t two = 0; two < 2; ++two) {
                const int64_t src = (h * 2 + two) * half + j, dst = (h * half + j) * 2 + two;
                std::copy_n(w.begin() + src * cols, cols, out.begin() + dst * cols);
            }
    return out;
}

std::vector<float> read_f32(const format::TensorStore& s, const std::string& name) {
    auto v = s.view(name);
    const float* p = v->as<const float>();
    return std::vector<float>(p, p + v->n_elems());
}

// The same weights as HF (rotate-half) and as llama.cpp writes them for llama (Q/K permuted, interleaved RoPE).
TEST(Transformer, GgufPermutedQkWithInterleavedRopeEqualsHf) {
    ThreadPool pool(2);
    for (const ArchDesc* desc : all_archs()) { // every row of the arch table
        const std::string arch(desc->name);
        const auto c = tiny_config(arch);
        const ArchDesc& a = *find_arch(arch);
        auto hf = make_synthetic_model(c, a, SourceFormat::kHf, DType::kF32, 7);
        ASSERT_TRUE(hf.ok());
        auto gguf = std::make_shared<MemoryStore>();
        for (const auto& info : (*hf)->tensors()) {
            std::string name;
            for (size_t r = 0; r < kNumRoles && name.empty(); ++r)
                for (int64_t il = 0; il < c.n_layers; ++il)
                    if (tensor_name(a, SourceFormat::kHf, TensorRole(r), il) == info.name)
                        name = tensor_name(a, SourceFormat::kGguf, TensorRole(r), il);
            ASSERT_FALSE(name.empty()) << info.name;
            auto w = read_f32(**hf, info.name);
            const bool is_q = name.find("attn_q.") != std::string::npos,
                       is_k = name.find("attn_k.") != std::string::npos;
            if (a.quirks.gguf_qk_permuted && (is_q || is_k))
                w = permute_rows(w, info.shape[0], info.shape.n_dims == 2 ? info.shape[1] : 1,
                                 is_q ? c.n_heads : c.n_kv_heads);
            ASSERT_TRUE(gguf->add(name, DType::kF32, info.shape, w).ok());
        }
        auto t_hf = Transformer::create(*hf, c, SourceFormat::kHf);
        auto t_gguf = Transformer::create(gguf, c, SourceFormat::kGguf);
        ASSERT_TRUE(t_hf.ok() && t_gguf.ok());
        EXPECT_EQ((*t_gguf)->rope_style(), a.quirks.rope_gguf);
        const auto tokens = prompt(9, c.vocab_size);
        const auto x = all_logits(**t_hf, tokens, &pool), y = all_logits(**t_gguf, tokens, &pool);
        EXPECT_LT(max_rel_err(y.data(), x.data(), 9, c.vocab_size), 1e-5) << arch;
    }
}

TEST(Transformer, MissingTensorIsNamed) {
    auto c = tiny_config("qwen2");
    auto store = make_synthetic_model(c, kQwen2Arch, SourceFormat::kHf, DType::kF32, 1);
    ASSERT_TRUE(store.ok());
    (*store)->remove("model.layers.1.self_attn.k_proj.bias");
    auto t = Transformer::create(*store, c, SourceFormat::kHf);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, ErrorCode::kBadInput);
    EXPECT_NE(t.error().message.find("'model.layers.1.self_attn.k_proj.bias'"), std::string::npos) << t.error().message;
    EXPECT_NE(t.error().message.find("missing"), std::string::npos);
}

TEST(Transformer, WrongShapeIsNamed) {
    auto c = tiny_config();
    auto store = make_synthetic_model(c, kLlamaArch, SourceFormat::kHf, DType::kF32, 1);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(
        (*store)
            ->add("model.layers.0.mlp.up_proj.weight", DType::kF32, Shape{48, 80}, std::vector<float>(48 * 80, 0.0f))
            .ok());
    auto t = Transformer::create(*store, c, SourceFormat::kHf);
    ASSERT_FALSE(t.ok());
    EXPECT_NE(
        t.error().message.find("tensor 'model.layers.0.mlp.up_proj.weight' has shape [48, 80], expected [80, 48]"),
        std::string::npos)
        << t.error().message;
}

TEST(Transformer, UnusableDtypeAndBadConfig) {
    auto c = tiny_config();
    auto store = make_synthetic_model(c, kLlamaArch, SourceFormat::kHf, DType::kF32, 1);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(
        (*store)->add_raw("lm_head.weight", DType::kI32, Shape{61, 48}, std::vector<uint8_t>(61 * 48 * 4)).ok());
    auto t = Transformer::create(*store, c, SourceFormat::kHf);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(t.error().message.find("lm_head.weight"), std::string::npos);
    c.n_kv_heads = 4; // 6 heads are not a multiple of 4 kv heads
    auto bad = Transformer::create(*store, c, SourceFormat::kHf);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("num_key_value_heads"), std::string::npos);
    c = tiny_config();
    c.arch = "gpt2", c.hf_architecture = "GPT2LMHeadModel";
    auto unk = Transformer::create(*store, c, SourceFormat::kHf);
    ASSERT_FALSE(unk.ok());
    EXPECT_EQ(unk.error().code, ErrorCode::kUnsupported);
}

// GGUF's rope_freqs.weight (as convert_hf_to_gguf.py computes it for llama3) reproduces HF's llama3 inv_freq.
TEST(RopeFreqs, Llama3FactorsMatchGgufRopeFreqs) {
    format::ModelConfig c = tiny_config();
    c.head_dim = 64, c.rope_theta = 500000.0f;
    c.rope_scaling = {"llama3", 8.0f, 1.0f, 4.0f, 64};
    auto hf = compute_inv_freq(c, {});
    ASSERT_TRUE(hf.ok());
    std::vector<float> factors;
    const double lo = 64 / 1.0, hi = 64 / 4.0;
    for (int i = 0; i < 32; ++i) {
        const double f = 1.0 / std::pow(500000.0, 2.0 * i / 64), wl = 2 * M_PI / f;
        if (wl < hi)
            factors.push_back(1.0f);
        else if (wl > lo)
            factors.push_back(8.0f);
        else {
            const double smooth = (64 / wl - 1.0) / (4.0 - 1.0);
            factors.push_back(float(1.0 / ((1 - smooth) / 8.0 + smooth)));
        }
    }
    c.rope_scaling = {};
    auto gguf = compute_inv_freq(c, factors);
    ASSERT_TRUE(gguf.ok());
    int n_scaled = 0;
    for (size_t i = 0; i < 32; ++i) {
        EXPECT_NEAR((*gguf)[i] / (*hf)[i], 1.0, 1e-6) << i;
        n_scaled += factors[i] != 1.0f;
    }
    EXPECT_GT(n_scaled, 4); // the test configuration does exercise the scaled bands
    c.rope_scaling.type = "yarn";
    EXPECT_EQ(compute_inv_freq(c, {}).error().code, ErrorCode::kUnsupported);
}

} // namespace
} // namespace lowbit::model
