// SPDX-License-Identifier: MIT
// check_model_config: bounds and checked size products for a ModelConfig read from config.json or GGUF metadata.
#include "format/hf/config.h"

#include "core/checked.h"

#include <fmt/format.h>

namespace lowbit::format {

Status check_model_config(const ModelConfig& c, const std::string& label, ConfigSource source) {
    const bool gguf = source == ConfigSource::kGguf;
    const std::string a = c.arch.empty() ? std::string("llama") : c.arch;
    auto key = [&](const char* hf, const char* gguf_suffix) { return gguf ? a + "." + gguf_suffix : std::string(hf); };
    struct Field {
        std::string key;
        int64_t value;
        int64_t lo, hi;
    };
    const Field fields[] = {
        {key("num_hidden_layers", "block_count"), c.n_layers, 1, kMaxLayers},
        {key("hidden_size", "embedding_length"), c.hidden_size, 1, kMaxHidden},
        {key("intermediate_size", "feed_forward_length"), c.intermediate_size, 1, kMaxIntermediate},
        {key("num_attention_heads", "attention.head_count"), c.n_heads, 1, kMaxHeads},
        {key("num_key_value_heads", "attention.head_count_kv"), c.n_kv_heads, 1, kMaxHeads},
        {key("head_dim", "attention.key_length"), c.head_dim, 1, kMaxHeadDim},
        {key("vocab_size", "vocab_size"), c.vocab_size, 1, kMaxVocab},
        {key("max_position_embeddings", "context_length"), c.max_position_embeddings, 0, kMaxPositions},
    };
    for (const Field& f : fields)
        if (f.value < f.lo || f.value > f.hi)
            return make_error(ErrorCode::kBadInput,
                              fmt::format("{}: {} is {}, expected {} to {}{}", label, f.key, f.value, f.lo, f.hi,
                                          f.lo == 0 ? " (0 = unknown)" : ""));
    // Every size the model room derives from the config, through checked arithmetic (the bounds make overflow
    // impossible today; this keeps it so if they are raised).
    const auto u = [](int64_t x) { return static_cast<uint64_t>(x); };
    const auto q = checked_mul(u(c.n_heads), u(c.head_dim));
    const auto kv = checked_mul(u(c.n_kv_heads), u(c.head_dim));
    const auto embd = checked_mul(u(c.vocab_size), u(c.hidden_size));
    std::optional<uint64_t> layer;
    if (q && kv) {
        const auto attn = checked_mul(u(c.hidden_size), *q); // wq, wo
        const auto kvw = checked_mul(u(c.hidden_size), *kv); // wk, wv
        const auto ffn = checked_product({3, u(c.intermediate_size), u(c.hidden_size)});
        if (attn && kvw && ffn) {
            const auto a2 = checked_mul(2, *attn), kv2 = checked_mul(2, *kvw);
            if (a2 && kv2) {
                const auto s = checked_add(*a2, *kv2);
                layer = s ? checked_add(*s, *ffn) : std::nullopt;
            }
        }
    }
    const auto layers = layer ? checked_mul(*layer, u(c.n_layers)) : std::nullopt;
    const auto two_embd = embd ? checked_mul(2, *embd) : std::nullopt;
    const auto total = layers && two_embd ? checked_add(*layers, *two_embd) : std::nullopt;
    if (!total || *total > (uint64_t(1) << 62))
        return make_error(ErrorCode::kBadInput,
                          fmt::format("{}: the parameter count implied by the config ({} layers, hidden {}, "
                                      "intermediate {}, {} heads x {} dims, vocab {}) overflows",
                                      label, c.n_layers, c.hidden_size, c.intermediate_size, c.n_heads, c.head_dim,
                                      c.vocab_size));
    return ok_status();
}

} // namespace lowbit::format
