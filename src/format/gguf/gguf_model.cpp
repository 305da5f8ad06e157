// SPDX-License-Identifier: MIT
// vocab_from_gguf / config_from_gguf: key-by-key translation of GGUF metadata with type and range checks.
#include "format/gguf/gguf_model.h"

#include "core/log.h"

#include <fmt/format.h>

namespace lowbit::gguf {

namespace {

Error bad(std::string msg) {
    return make_error(ErrorCode::kBadInput, std::move(msg));
}

// A string array (tokens, merges) copied out of the metadata.
Result<std::vector<std::string>> string_array(const File& f, std::string_view key) {
    LOWBIT_ASSIGN_OR_RETURN(const Array* a, f.lookup_array(key, ValueType::kString));
    std::vector<std::string> out;
    if (!a) return out;
    out.reserve(a->items.size());
    for (const Value& v : a->items) out.push_back(*v.as_string());
    return out;
}

// Reads an optional special-token id into `id`; an id outside [0, n_tokens) is ignored with a warning, as
// llama.cpp does (several published GGUFs carry a padding id == n_vocab).
Status read_token_id(const File& f, std::string_view key, int64_t n_tokens, int64_t& id) {
    LOWBIT_ASSIGN_OR_RETURN(const auto v, f.lookup_int(key));
    if (!v) return ok_status();
    if (*v < 0 || *v >= n_tokens) {
        log_warn("{}: metadata key '{}' is {}, outside the vocabulary of {} tokens; ignored", f.path(), key, *v,
                 n_tokens);
        return ok_status();
    }
    id = *v;
    return ok_status();
}

Status read_bool(const File& f, std::string_view key, bool& out) {
    LOWBIT_ASSIGN_OR_RETURN(const auto v, f.lookup_bool(key));
    if (v) out = *v;
    return ok_status();
}

} // namespace

Result<format::VocabData> vocab_from_gguf(const File& f) {
    format::VocabData v;
    LOWBIT_ASSIGN_OR_RETURN(v.model, f.require_string("tokenizer.ggml.model"));
    LOWBIT_ASSIGN_OR_RETURN(const auto pre, f.lookup_string("tokenizer.ggml.pre"));
    v.pre = pre.value_or("");
    LOWBIT_ASSIGN_OR_RETURN(v.tokens, string_array(f, "tokenizer.ggml.tokens"));
    if (v.tokens.empty())
        return bad(
            fmt::format("'{}' has no tokenizer.ggml.tokens (or an empty list): it carries no vocabulary", f.path()));
    const auto n = static_cast<int64_t>(v.tokens.size());

    LOWBIT_ASSIGN_OR_RETURN(const Array* scores, f.lookup_array("tokenizer.ggml.scores", ValueType::kF32));
    if (scores) {
        if (static_cast<int64_t>(scores->items.size()) != n)
            return bad(fmt::format("tokenizer.ggml.scores has {} entries, expected one per token ({})",
                                   scores->items.size(), n));
        v.scores.reserve(scores->items.size());
        for (const Value& s : scores->items) v.scores.push_back(std::get<float>(s.storage()));
    }
    LOWBIT_ASSIGN_OR_RETURN(const Array* types, f.lookup_array("tokenizer.ggml.token_type"));
    if (types) {
        if (static_cast<int64_t>(types->items.size()) != n)
            return bad(fmt::format("tokenizer.ggml.token_type has {} entries, expected one per token ({})",
                                   types->items.size(), n));
        v.token_types.reserve(types->items.size());
        for (size_t i = 0; i < types->items.size(); ++i) {
            const auto t = types->items[i].as_int();
            if (!t || *t < 0 || *t > 6)
                return bad(fmt::format("tokenizer.ggml.token_type[{}] is {}, expected an integer 0..6", i,
                                       types->items[i].to_json()));
            v.token_types.push_back(static_cast<format::TokenType>(*t));
        }
    }
    LOWBIT_ASSIGN_OR_RETURN(v.merges, string_array(f, "tokenizer.ggml.merges"));

    const bool spm = v.model == "llama";
    v.add_bos = spm;
    v.add_eos = false;
    v.add_space_prefix = spm;
    LOWBIT_TRY(read_token_id(f, "tokenizer.ggml.bos_token_id", n, v.bos_id));
    LOWBIT_TRY(read_token_id(f, "tokenizer.ggml.eos_token_id", n, v.eos_id));
    LOWBIT_TRY(read_token_id(f, "tokenizer.ggml.unknown_token_id", n, v.unk_id));
    LOWBIT_TRY(read_token_id(f, "tokenizer.ggml.padding_token_id", n, v.pad_id));
    LOWBIT_TRY(read_token_id(f, "tokenizer.ggml.eot_token_id", n, v.eot_id));
    LOWBIT_TRY(read_bool(f, "tokenizer.ggml.add_bos_token", v.add_bos));
    LOWBIT_TRY(read_bool(f, "tokenizer.ggml.add_eos_token", v.add_eos));
    LOWBIT_TRY(read_bool(f, "tokenizer.ggml.add_space_prefix", v.add_space_prefix));
    LOWBIT_ASSIGN_OR_RETURN(const auto chat, f.lookup_string("tokenizer.chat_template"));
    v.chat_template = chat.value_or("");
    return v;
}

bool is_supported_arch(std::string_view arch) {
    return arch == "llama" || arch == "qwen2";
}

namespace {

// A required positive integer <arch>.<suffix>.
Result<int64_t> positive(const File& f, const std::string& key) {
    LOWBIT_ASSIGN_OR_RETURN(const int64_t x, f.require_int(key));
    if (x <= 0) return bad(fmt::format("metadata key '{}' is {}, expected a positive integer", key, x));
    return x;
}

Result<int64_t> optional_positive(const File& f, const std::string& key, int64_t fallback) {
    LOWBIT_ASSIGN_OR_RETURN(const auto x, f.lookup_int(key));
    if (!x) return fallback;
    if (*x <= 0) return bad(fmt::format("metadata key '{}' is {}, expected a positive integer", key, *x));
    return *x;
}

Status read_rope_scaling(const File& f, const std::string& a, format::ModelConfig& c) {
    LOWBIT_ASSIGN_OR_RETURN(const auto type, f.lookup_string(a + ".rope.scaling.type"));
    LOWBIT_ASSIGN_OR_RETURN(auto factor, f.lookup_float(a + ".rope.scaling.factor"));
    if (!factor) { // older converters wrote rope.scale_linear
        LOWBIT_ASSIGN_OR_RETURN(factor, f.lookup_float(a + ".rope.scale_linear"));
    }
    LOWBIT_ASSIGN_OR_RETURN(const auto orig, f.lookup_int(a + ".rope.scaling.original_context_length"));
    // llama.cpp's default type is "linear" (it applies only when a factor is given).
    const std::string t = type.value_or(factor ? "linear" : "none");
    if (t == "none") return ok_status();
    if (t != "linear")
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("{}.rope.scaling.type '{}' is not supported (none and linear are)", a, t));
    if (!factor || !(*factor > 0.0))
        return bad(fmt::format("{}.rope.scaling.type is linear but {}.rope.scaling.factor is {}", a, a,
                               factor ? fmt::format("{}", *factor) : std::string("missing")));
    if (*factor == 1.0) return ok_status(); // linear scaling by 1 is no scaling
    c.rope_scaling.type = "linear";
    c.rope_scaling.factor = static_cast<float>(*factor);
    c.rope_scaling.original_max_position_embeddings = orig.value_or(0);
    return ok_status();
}

} // namespace

Result<format::ModelConfig> config_from_gguf(const File& f) {
    format::ModelConfig c;
    LOWBIT_ASSIGN_OR_RETURN(c.arch, f.require_string("general.architecture"));
    if (!is_supported_arch(c.arch))
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("'{}' has architecture '{}'; lowbit supports llama and qwen2", f.path(), c.arch));
    const std::string& a = c.arch;
    c.hf_architecture = a == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
    LOWBIT_ASSIGN_OR_RETURN(c.hidden_size, positive(f, a + ".embedding_length"));
    LOWBIT_ASSIGN_OR_RETURN(c.n_layers, positive(f, a + ".block_count"));
    LOWBIT_ASSIGN_OR_RETURN(c.intermediate_size, positive(f, a + ".feed_forward_length"));
    LOWBIT_ASSIGN_OR_RETURN(c.n_heads, positive(f, a + ".attention.head_count"));
    LOWBIT_ASSIGN_OR_RETURN(c.n_kv_heads, optional_positive(f, a + ".attention.head_count_kv", c.n_heads));
    LOWBIT_ASSIGN_OR_RETURN(c.max_position_embeddings, optional_positive(f, a + ".context_length", 2048));
    if (c.n_heads % c.n_kv_heads != 0)
        return bad(fmt::format("{}.attention.head_count ({}) is not a multiple of head_count_kv ({})", a, c.n_heads,
                               c.n_kv_heads));
    const int64_t default_head_dim = c.hidden_size % c.n_heads == 0 ? c.hidden_size / c.n_heads : 0;
    LOWBIT_ASSIGN_OR_RETURN(c.head_dim, optional_positive(f, a + ".attention.key_length", default_head_dim));
    if (c.head_dim == 0)
        return bad(fmt::format("{}.embedding_length ({}) is not a multiple of attention.head_count ({}) and "
                               "attention.key_length is absent",
                               a, c.hidden_size, c.n_heads));
    LOWBIT_ASSIGN_OR_RETURN(const int64_t rope_dim, optional_positive(f, a + ".rope.dimension_count", c.head_dim));
    if (rope_dim != c.head_dim)
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("{}.rope.dimension_count is {} but the head dimension is {}: partial rotary "
                                      "embeddings are not supported",
                                      a, rope_dim, c.head_dim));
    LOWBIT_ASSIGN_OR_RETURN(const auto theta, f.lookup_float(a + ".rope.freq_base"));
    if (theta) c.rope_theta = static_cast<float>(*theta);
    LOWBIT_ASSIGN_OR_RETURN(const auto eps, f.lookup_float(a + ".attention.layer_norm_rms_epsilon"));
    if (eps) c.rms_norm_eps = static_cast<float>(*eps);
    LOWBIT_TRY(read_rope_scaling(f, a, c));

    LOWBIT_ASSIGN_OR_RETURN(const auto n_vocab, f.lookup_int(a + ".vocab_size"));
    const Array* tokens = f.get_array("tokenizer.ggml.tokens");
    const format::TensorInfo* embd = f.find("token_embd.weight");
    if (n_vocab)
        c.vocab_size = *n_vocab;
    else if (tokens)
        c.vocab_size = static_cast<int64_t>(tokens->items.size());
    else if (embd && embd->shape.n_dims == 2)
        c.vocab_size = embd->shape[0];
    if (c.vocab_size <= 0)
        return bad(fmt::format("'{}' gives no vocabulary size: {}.vocab_size, tokenizer.ggml.tokens and "
                               "token_embd.weight are all absent",
                               f.path(), a));

    c.tie_word_embeddings = f.find("output.weight") == nullptr;
    c.attention_bias = f.find("blk.0.attn_q.bias") != nullptr;
    LOWBIT_ASSIGN_OR_RETURN(const auto bos, f.lookup_int("tokenizer.ggml.bos_token_id"));
    LOWBIT_ASSIGN_OR_RETURN(const auto eos, f.lookup_int("tokenizer.ggml.eos_token_id"));
    if (bos) c.bos_token_ids.push_back(*bos);
    if (eos) c.eos_token_ids.push_back(*eos);
    LOWBIT_TRY(format::check_model_config(c, "'" + f.path() + "'", format::ConfigSource::kGguf));
    return c;
}

} // namespace lowbit::gguf
