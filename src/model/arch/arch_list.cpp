// SPDX-License-Identifier: MIT
// The architecture table and the name patterns shared by Llama-like rows.
#include "model/arch/arch_list.h"

namespace lowbit::model {

using R = TensorRole;

namespace {
constexpr NamePatterns make_names(std::initializer_list<std::pair<R, std::string_view>> rows) {
    NamePatterns p{};
    for (const auto& [role, name] : rows) p[static_cast<size_t>(role)] = name;
    return p;
}
} // namespace

constinit const NamePatterns kLlamaHfNames = make_names({
    {R::kTokenEmbd, "model.embed_tokens.weight"},
    {R::kOutputNorm, "model.norm.weight"},
    {R::kOutput, "lm_head.weight"},
    {R::kAttnNorm, "model.layers.{}.input_layernorm.weight"},
    {R::kAttnQ, "model.layers.{}.self_attn.q_proj.weight"},
    {R::kAttnK, "model.layers.{}.self_attn.k_proj.weight"},
    {R::kAttnV, "model.layers.{}.self_attn.v_proj.weight"},
    {R::kAttnOut, "model.layers.{}.self_attn.o_proj.weight"},
    {R::kAttnQBias, "model.layers.{}.self_attn.q_proj.bias"},
    {R::kAttnKBias, "model.layers.{}.self_attn.k_proj.bias"},
    {R::kAttnVBias, "model.layers.{}.self_attn.v_proj.bias"},
    {R::kAttnOutBias, "model.layers.{}.self_attn.o_proj.bias"},
    {R::kFfnNorm, "model.layers.{}.post_attention_layernorm.weight"},
    {R::kFfnGate, "model.layers.{}.mlp.gate_proj.weight"},
    {R::kFfnUp, "model.layers.{}.mlp.up_proj.weight"},
    {R::kFfnDown, "model.layers.{}.mlp.down_proj.weight"},
});

constinit const NamePatterns kLlamaGgufNames = make_names({
    {R::kTokenEmbd, "token_embd.weight"},
    {R::kOutputNorm, "output_norm.weight"},
    {R::kOutput, "output.weight"},
    {R::kRopeFreqs, "rope_freqs.weight"},
    {R::kAttnNorm, "blk.{}.attn_norm.weight"},
    {R::kAttnQ, "blk.{}.attn_q.weight"},
    {R::kAttnK, "blk.{}.attn_k.weight"},
    {R::kAttnV, "blk.{}.attn_v.weight"},
    {R::kAttnOut, "blk.{}.attn_output.weight"},
    {R::kAttnQBias, "blk.{}.attn_q.bias"},
    {R::kAttnKBias, "blk.{}.attn_k.bias"},
    {R::kAttnVBias, "blk.{}.attn_v.bias"},
    {R::kAttnOutBias, "blk.{}.attn_output.bias"},
    {R::kFfnNorm, "blk.{}.ffn_norm.weight"},
    {R::kFfnGate, "blk.{}.ffn_gate.weight"},
    {R::kFfnUp, "blk.{}.ffn_up.weight"},
    {R::kFfnDown, "blk.{}.ffn_down.weight"},
});

constinit const HparamKeys kLlamaHfKeys = {
    "vocab_size",          "hidden_size", "intermediate_size",       "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim",    "max_position_embeddings", "rms_norm_eps",      "rope_theta"};
constinit const HparamKeys kLlamaGgufKeys = {
    "vocab_size",           "embedding_length",     "feed_forward_length",
    "block_count",          "attention.head_count", "attention.head_count_kv",
    "attention.key_length", "context_length",       "attention.layer_norm_rms_epsilon",
    "rope.freq_base"};

namespace {
const ArchDesc* const kArchs[] = {&kLlamaArch, &kQwen2Arch};
} // namespace

std::span<const ArchDesc* const> all_archs() {
    return kArchs;
}

const ArchDesc* find_arch(std::string_view name) {
    for (const ArchDesc* a : kArchs) {
        if (a->name == name) return a;
        for (std::string_view hf : a->hf_architectures)
            if (!hf.empty() && hf == name) return a;
    }
    return nullptr;
}

const char* source_format_name(SourceFormat f) {
    return f == SourceFormat::kHf ? "Hugging Face" : "GGUF";
}

std::string tensor_name(const ArchDesc& arch, SourceFormat format, TensorRole role, int64_t layer) {
    std::string s(arch.names(format)[static_cast<size_t>(role)]);
    if (const size_t at = s.find("{}"); at != std::string::npos) s.replace(at, 2, std::to_string(layer));
    return s;
}

const char* role_description(TensorRole role) {
    switch (role) {
    case R::kTokenEmbd:
        return "token embedding";
    case R::kOutputNorm:
        return "final norm";
    case R::kOutput:
        return "output (LM head)";
    case R::kRopeFreqs:
        return "RoPE frequency factors";
    case R::kAttnNorm:
        return "attention norm";
    case R::kAttnQ:
        return "attention q projection";
    case R::kAttnK:
        return "attention k projection";
    case R::kAttnV:
        return "attention v projection";
    case R::kAttnOut:
        return "attention output projection";
    case R::kAttnQBias:
        return "attention q bias";
    case R::kAttnKBias:
        return "attention k bias";
    case R::kAttnVBias:
        return "attention v bias";
    case R::kAttnOutBias:
        return "attention output bias";
    case R::kFfnNorm:
        return "feed-forward norm";
    case R::kFfnGate:
        return "feed-forward gate projection";
    case R::kFfnUp:
        return "feed-forward up projection";
    case R::kFfnDown:
        return "feed-forward down projection";
    case R::kCount:
        break;
    }
    return "?";
}

} // namespace lowbit::model
