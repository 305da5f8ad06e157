// SPDX-License-Identifier: MIT
// The forward pass (see transformer.h).
#include "model/transformer.h"

#include "model/arch/arch_list.h"
#include "model/rope_freqs.h"

#include <cmath>
#include <fmt/format.h>

namespace lowbit::model {
namespace {

void grow(std::vector<float>& v, int64_t n) {
    if (v.size() < size_t(n)) v.resize(size_t(n));
}

void add_in_place(float* x, const float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

const float* bias_or_null(const std::vector<float>& b) {
    return b.empty() ? nullptr : b.data();
}

} // namespace

Result<std::unique_ptr<Transformer>> Transformer::create(std::shared_ptr<const format::TensorStore> store,
                                                         const format::ModelConfig& config, SourceFormat source,
                                                         kernel::Backend backend) {
    LOWBIT_ASSIGN_OR_RETURN(format::ModelConfig c, normalize_config(config));
    const ArchDesc* arch = find_arch(c.arch);
    if (!arch) arch = find_arch(c.hf_architecture);
    if (!arch)
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("architecture '{}' ({}) is not supported (supported: llama, mistral, qwen2)",
                                      c.arch, c.hf_architecture));
    if (!c.rope_scaling.type.empty() && c.rope_scaling.type == "llama3" && !arch->quirks.rope_scaling_llama3)
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("architecture '{}' does not use llama3 rope scaling", arch->name));
    std::unique_ptr<Transformer> t(new Transformer());
    LOWBIT_ASSIGN_OR_RETURN(t->weights_, bind_weights(*store, c, *arch, source));
    LOWBIT_ASSIGN_OR_RETURN(t->inv_freq_, compute_inv_freq(c, t->weights_.rope_freqs));
    t->store_ = std::move(store);
    t->config_ = std::move(c);
    t->arch_ = arch;
    t->source_ = source;
    t->backend_ = backend;
    t->rope_style_ = arch->rope_style(source);
    return t;
}

KvCache Transformer::make_cache(int64_t n_ctx) const {
    KvCache c;
    c.n_ctx = n_ctx;
    c.n_layers = config_.n_layers;
    c.kv_dim = config_.n_kv_heads * config_.head_dim;
    c.k.assign(size_t(c.n_layers * n_ctx * c.kv_dim), 0.0f);
    c.v.assign(size_t(c.n_layers * n_ctx * c.kv_dim), 0.0f);
    return c;
}

void Transformer::embed(std::span<const int32_t> tokens, float* hidden) const {
    for (size_t t = 0; t < tokens.size(); ++t)
        kernel::dequantize_row(weights_.token_embd, tokens[t], hidden + int64_t(t) * config_.hidden_size);
}

// hidden += o_proj(attention(rope(q), rope(k), v)) for n tokens at positions [n_past, n_past + n).
void Transformer::attention_block(const LayerWeights& l, int64_t il, float* hidden, int64_t n, int64_t n_past,
                                  KvCache& cache, ThreadPool* pool) {
    const auto& c = config_;
    const auto ex = exec(pool);
    const int64_t q_dim = c.n_heads * c.head_dim;
    grow(norm_, n * c.hidden_size), grow(q_, n * q_dim), grow(attn_, n * q_dim);
    kernel::rms_norm(ex, hidden, l.attn_norm.data(), norm_.data(), n, c.hidden_size, c.rms_norm_eps);
    float* k = cache.k_at(il, n_past); // [n, kv_dim]: K/V go straight into the cache rows
    float* v = cache.v_at(il, n_past);
    observe(il, LinearId::kQ, norm_.data(), n, c.hidden_size);
    observe(il, LinearId::kK, norm_.data(), n, c.hidden_size);
    observe(il, LinearId::kV, norm_.data(), n, c.hidden_size);
    kernel::matmul(ex, norm_.data(), n, l.wq, bias_or_null(l.bq), q_.data());
    kernel::matmul(ex, norm_.data(), n, l.wk, bias_or_null(l.bk), k);
    kernel::matmul(ex, norm_.data(), n, l.wv, bias_or_null(l.bv), v);
    kernel::rope(ex, q_.data(), n, q_dim, c.n_heads, c.head_dim, n_past, inv_freq_.data(), rope_style_);
    kernel::rope(ex, k, n, cache.kv_dim, c.n_kv_heads, c.head_dim, n_past, inv_freq_.data(), rope_style_);
    kernel::AttentionArgs a;
    a.q = q_.data(), a.k = cache.k_at(il, 0), a.v = cache.v_at(il, 0), a.out = attn_.data();
    a.n_tokens = n, a.n_past = n_past, a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads, a.head_dim = c.head_dim;
    a.scale = static_cast<float>(1.0 / std::sqrt(double(c.head_dim)));
    kernel::attention(ex, a);
    observe(il, LinearId::kO, attn_.data(), n, q_dim);
    kernel::matmul(ex, attn_.data(), n, l.wo, bias_or_null(l.bo), norm_.data());
    add_in_place(hidden, norm_.data(), n * c.hidden_size);
}

// hidden += down(silu(gate(x)) * up(x)), x = rms_norm(hidden).
void Transformer::mlp_block(const LayerWeights& l, int64_t il, float* hidden, int64_t n, ThreadPool* pool) {
    const auto& c = config_;
    const auto ex = exec(pool);
    grow(norm_, n * c.hidden_size), grow(gate_, n * c.intermediate_size), grow(up_, n * c.intermediate_size);
    kernel::rms_norm(ex, hidden, l.ffn_norm.data(), norm_.data(), n, c.hidden_size, c.rms_norm_eps);
    observe(il, LinearId::kGate, norm_.data(), n, c.hidden_size);
    observe(il, LinearId::kUp, norm_.data(), n, c.hidden_size);
    kernel::matmul(ex, norm_.data(), n, l.w_gate, nullptr, gate_.data());
    kernel::matmul(ex, norm_.data(), n, l.w_up, nullptr, up_.data());
    kernel::silu_mul(ex, gate_.data(), up_.data(), gate_.data(), n * c.intermediate_size);
    observe(il, LinearId::kDown, gate_.data(), n, c.intermediate_size);
    kernel::matmul(ex, gate_.data(), n, l.w_down, nullptr, norm_.data());
    add_in_place(hidden, norm_.data(), n * c.hidden_size);
}

void Transformer::run_layer(int64_t layer, float* hidden, int64_t n_tokens, int64_t n_past, KvCache& cache,
                            ThreadPool* pool) {
    const LayerWeights& l = weights_.layers[size_t(layer)];
    attention_block(l, layer, hidden, n_tokens, n_past, cache, pool);
    mlp_block(l, layer, hidden, n_tokens, pool);
}

void Transformer::head(float* hidden, int64_t n_tokens, float* logits, ThreadPool* pool) {
    const auto ex = exec(pool);
    kernel::rms_norm(ex, hidden, weights_.output_norm.data(), hidden, n_tokens, config_.hidden_size,
                     config_.rms_norm_eps);
    observe(-1, LinearId::kOutput, hidden, n_tokens, config_.hidden_size);
    kernel::matmul(ex, hidden, n_tokens, weights_.output, nullptr, logits);
}

const char* linear_gguf_name(LinearId id) {
    static const char* const kNames[] = {"attn_q",   "attn_k", "attn_v",   "attn_output",
                                         "ffn_gate", "ffn_up", "ffn_down", "output"};
    return kNames[static_cast<int>(id)];
}

const char* linear_hf_name(LinearId id) {
    static const char* const kNames[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                         "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj",    "lm_head"};
    return kNames[static_cast<int>(id)];
}

void Transformer::forward(std::span<const int32_t> tokens, int64_t n_past, KvCache& cache, bool all_logits,
                          float* logits, ThreadPool* pool) {
    const int64_t n = int64_t(tokens.size());
    grow(hidden_, n * config_.hidden_size);
    embed(tokens, hidden_.data());
    for (int64_t il = 0; il < config_.n_layers; ++il) run_layer(il, hidden_.data(), n, n_past, cache, pool);
    if (all_logits) {
        head(hidden_.data(), n, logits, pool);
    } else {
        head(hidden_.data() + (n - 1) * config_.hidden_size, 1, logits, pool);
    }
}

} // namespace lowbit::model
