// SPDX-License-Identifier: MIT
// The forward pass (see transformer.h).
#include "model/transformer.h"

#include "core/check.h"
#include "model/arch/arch_list.h"
#include "model/rope_freqs.h"

#include <algorithm>
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

Result<KvCache> Transformer::make_cache(const KvCacheOptions& options) const {
    return KvCache::create(config_.n_layers, config_.n_kv_heads, config_.head_dim, options);
}

KvCache Transformer::make_cache(int64_t n_ctx) const {
    KvCacheOptions o;
    o.n_ctx = n_ctx;
    auto c = make_cache(o);
    LOWBIT_CHECK(c.ok());
    return std::move(c).value();
}

Status Transformer::validate_batch(const Batch& b, const KvCache& cache) const {
    const int64_t n = b.size();
    if (n == 0) return make_error(ErrorCode::kUsage, "batch: no tokens");
    if (int64_t(b.pos.size()) != n || int64_t(b.seq.size()) != n || int64_t(b.logits.size()) != n)
        return make_error(ErrorCode::kUsage, "batch: token, pos, seq and logits differ in length");
    std::vector<int64_t> next(size_t(cache.n_seq()), -1); // expected position of each slot's next token
    for (int64_t t = 0; t < n; ++t) {
        const int64_t id = b.token[size_t(t)], s = b.seq[size_t(t)], p = b.pos[size_t(t)];
        if (id < 0 || id >= config_.vocab_size)
            return make_error(ErrorCode::kUsage, fmt::format("batch: token id {} at index {} is outside the "
                                                             "vocabulary [0, {})",
                                                             id, t, config_.vocab_size));
        if (s < 0 || s >= cache.n_seq())
            return make_error(ErrorCode::kUsage, fmt::format("batch: sequence {} at index {} is outside the cache's "
                                                             "slots [0, {})",
                                                             s, t, cache.n_seq()));
        if (p < 0 || p >= cache.n_ctx())
            return make_error(ErrorCode::kUsage,
                              fmt::format("batch: position {} at index {} is outside the context of {} positions", p, t,
                                          cache.n_ctx()));
        int64_t& want = next[size_t(s)];
        if (want < 0 ? p > cache.seq_len(s) : p != want)
            return make_error(
                ErrorCode::kUsage,
                fmt::format("batch: token {} of sequence {} is at position {}, expected {}", t, s, p,
                            want < 0 ? fmt::format("at most {}", cache.seq_len(s)) : fmt::to_string(want)));
        want = p + 1;
    }
    return ok_status();
}

void Transformer::embed(std::span<const int32_t> tokens, float* hidden) const {
    for (size_t t = 0; t < tokens.size(); ++t)
        kernel::dequantize_row(weights_.token_embd, tokens[t], hidden + int64_t(t) * config_.hidden_size);
}

// hidden += o_proj(attention(rope(q), rope(k), v)) for n tokens, token t in slot seq[t] at position pos[t].
void Transformer::attention_block(const LayerWeights& l, int64_t il, float* hidden, int64_t n, const int32_t* seq,
                                  const int32_t* pos, KvCache& cache, ThreadPool* pool) {
    const auto& c = config_;
    const auto ex = exec(pool);
    const int64_t q_dim = c.n_heads * c.head_dim, kv_dim = cache.kv_dim();
    grow(norm_, n * c.hidden_size), grow(q_, n * q_dim), grow(attn_, n * q_dim);
    grow(k_, n * kv_dim), grow(v_, n * kv_dim);
    kernel::rms_norm(ex, hidden, l.attn_norm.data(), norm_.data(), n, c.hidden_size, c.rms_norm_eps);
    observe(il, LinearId::kQ, norm_.data(), n, c.hidden_size);
    observe(il, LinearId::kK, norm_.data(), n, c.hidden_size);
    observe(il, LinearId::kV, norm_.data(), n, c.hidden_size);
    kernel::matmul(ex, norm_.data(), n, l.wq, bias_or_null(l.bq), q_.data());
    kernel::matmul(ex, norm_.data(), n, l.wk, bias_or_null(l.bk), k_.data());
    kernel::matmul(ex, norm_.data(), n, l.wv, bias_or_null(l.bv), v_.data());
    // RoPE per run of consecutive positions of one slot (one run for a single sequence), then K/V into the
    // cache rows of that run.
    for (int64_t t0 = 0, t1; t0 < n; t0 = t1) {
        for (t1 = t0 + 1; t1 < n && seq[t1] == seq[t0] && pos[t1] == pos[t1 - 1] + 1;) ++t1;
        const int64_t len = t1 - t0;
        kernel::rope(ex, q_.data() + t0 * q_dim, len, q_dim, c.n_heads, c.head_dim, pos[t0], inv_freq_.data(),
                     rope_style_);
        kernel::rope(ex, k_.data() + t0 * kv_dim, len, kv_dim, c.n_kv_heads, c.head_dim, pos[t0], inv_freq_.data(),
                     rope_style_);
        cache.store(il, seq[t0], pos[t0], k_.data() + t0 * kv_dim, v_.data() + t0 * kv_dim, len);
    }
    kernel::KvAttentionArgs a;
    a.q = q_.data(), a.out = attn_.data(), a.seq = seq, a.pos = pos, a.n_tokens = n;
    a.k = cache.k_layer(il), a.v = cache.v_layer(il), a.kv_dtype = cache.type(), a.n_ctx = cache.n_ctx();
    a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads, a.head_dim = c.head_dim;
    a.scale = static_cast<float>(1.0 / std::sqrt(double(c.head_dim)));
    kernel::kv_attention(ex, a);
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

void Transformer::layer_step(int64_t il, float* hidden, int64_t n, const int32_t* seq, const int32_t* pos,
                             KvCache& cache, ThreadPool* pool) {
    const LayerWeights& l = weights_.layers[size_t(il)];
    attention_block(l, il, hidden, n, seq, pos, cache, pool);
    mlp_block(l, il, hidden, n, pool);
}

void Transformer::run_layer(int64_t layer, float* hidden, int64_t n_tokens, int64_t n_past, KvCache& cache,
                            ThreadPool* pool) {
    seq_scratch_.assign(size_t(n_tokens), 0);
    pos_scratch_.resize(size_t(n_tokens));
    for (int64_t t = 0; t < n_tokens; ++t) pos_scratch_[size_t(t)] = int32_t(n_past + t);
    layer_step(layer, hidden, n_tokens, seq_scratch_.data(), pos_scratch_.data(), cache, pool);
    cache.set_seq_len(0, n_past + n_tokens);
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

void Transformer::forward(const Batch& b, KvCache& cache, float* logits, ThreadPool* pool) {
    const int64_t n = b.size(), hs = config_.hidden_size;
    grow(hidden_, n * hs);
    embed(b.token, hidden_.data());
    for (int64_t il = 0; il < config_.n_layers; ++il)
        layer_step(il, hidden_.data(), n, b.seq.data(), b.pos.data(), cache, pool);
    for (int64_t t = 0; t < n; ++t) cache.set_seq_len(b.seq[size_t(t)], int64_t(b.pos[size_t(t)]) + 1);
    // The head runs on the rows that want logits only (the LM head is the largest matmul of a decode step).
    const int64_t n_out = b.n_logits();
    if (n_out == 0) return;
    if (n_out == n) return head(hidden_.data(), n, logits, pool);
    grow(picked_, n_out * hs);
    for (int64_t t = 0, r = 0; t < n; ++t)
        if (b.logits[size_t(t)]) std::copy_n(hidden_.data() + t * hs, hs, picked_.data() + (r++) * hs);
    head(picked_.data(), n_out, logits, pool);
}

void Transformer::forward(std::span<const int32_t> tokens, int64_t n_past, KvCache& cache, bool all_logits,
                          float* logits, ThreadPool* pool) {
    Batch b;
    const int64_t n = int64_t(tokens.size());
    for (int64_t t = 0; t < n; ++t) b.add(tokens[size_t(t)], int32_t(n_past + t), 0, all_logits || t == n - 1);
    forward(b, cache, logits, pool);
}

} // namespace lowbit::model
