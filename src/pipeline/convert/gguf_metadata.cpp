// SPDX-License-Identifier: MIT
// Metadata keys of converted GGUF files (value types as gguf-py's GGUFWriter uses them).
#include "pipeline/convert/gguf_metadata.h"

namespace lowbit::pipeline {
namespace {

using gguf::Value;

std::string base_name(std::string dir) {
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    const size_t s = dir.rfind('/');
    return s == std::string::npos ? dir : dir.substr(s + 1);
}

Value u32(int64_t x) {
    return Value::u32(static_cast<uint32_t>(x));
}

} // namespace

Status set_model_metadata(gguf::Writer& w, const format::ModelConfig& c, const std::string& source_dir, int file_type) {
    const std::string a = c.arch;
    LOWBIT_TRY(w.set("general.architecture", Value::string(a)));
    LOWBIT_TRY(w.set("general.type", Value::string("model")));
    LOWBIT_TRY(w.set("general.name", Value::string(base_name(source_dir))));
    LOWBIT_TRY(w.set(a + ".block_count", u32(c.n_layers)));
    LOWBIT_TRY(w.set(a + ".context_length", u32(c.max_position_embeddings)));
    LOWBIT_TRY(w.set(a + ".embedding_length", u32(c.hidden_size)));
    LOWBIT_TRY(w.set(a + ".feed_forward_length", u32(c.intermediate_size)));
    LOWBIT_TRY(w.set(a + ".attention.head_count", u32(c.n_heads)));
    LOWBIT_TRY(w.set(a + ".attention.head_count_kv", u32(c.n_kv_heads)));
    LOWBIT_TRY(w.set(a + ".rope.freq_base", Value::f32(c.rope_theta)));
    LOWBIT_TRY(w.set(a + ".attention.layer_norm_rms_epsilon", Value::f32(c.rms_norm_eps)));
    if (c.head_dim != c.hidden_size / c.n_heads) {
        LOWBIT_TRY(w.set(a + ".attention.key_length", u32(c.head_dim)));
        LOWBIT_TRY(w.set(a + ".attention.value_length", u32(c.head_dim)));
    }
    LOWBIT_TRY(w.set(a + ".rope.dimension_count", u32(c.head_dim)));
    if (c.rope_scaling.type == "linear") {
        LOWBIT_TRY(w.set(a + ".rope.scaling.type", Value::string("linear")));
        LOWBIT_TRY(w.set(a + ".rope.scaling.factor", Value::f32(c.rope_scaling.factor)));
    }
    LOWBIT_TRY(w.set("general.file_type", u32(file_type)));
    LOWBIT_TRY(w.set(a + ".vocab_size", u32(c.vocab_size)));
    LOWBIT_TRY(w.set("general.quantization_version", Value::u32(2)));
    return ok_status();
}

Status set_tokenizer_metadata(gguf::Writer& w, const format::VocabData& v) {
    LOWBIT_TRY(w.set("tokenizer.ggml.model", Value::string(v.model)));
    LOWBIT_TRY(w.set("tokenizer.ggml.pre", Value::string(v.pre)));
    LOWBIT_TRY(w.set("tokenizer.ggml.tokens", Value::string_array(v.tokens)));
    if (v.model == "llama" && !v.scores.empty()) LOWBIT_TRY(w.set("tokenizer.ggml.scores", Value::f32_array(v.scores)));
    std::vector<int32_t> types(v.tokens.size(), static_cast<int32_t>(format::TokenType::kNormal));
    for (size_t i = 0; i < v.token_types.size() && i < types.size(); ++i)
        types[i] = static_cast<int32_t>(v.token_types[i]);
    LOWBIT_TRY(w.set("tokenizer.ggml.token_type", Value::i32_array(types)));
    if (!v.merges.empty()) LOWBIT_TRY(w.set("tokenizer.ggml.merges", Value::string_array(v.merges)));
    const int64_t n = static_cast<int64_t>(v.tokens.size());
    auto set_id = [&](const char* key, int64_t id) -> Status {
        if (id < 0) return ok_status();
        if (id >= n)
            return make_error(ErrorCode::kBadInput, std::string(key) + " " + std::to_string(id) +
                                                        " is outside the vocabulary of " + std::to_string(n) +
                                                        " tokens");
        return w.set(key, u32(id));
    };
    LOWBIT_TRY(set_id("tokenizer.ggml.bos_token_id", v.bos_id));
    LOWBIT_TRY(set_id("tokenizer.ggml.eos_token_id", v.eos_id));
    LOWBIT_TRY(set_id("tokenizer.ggml.unknown_token_id", v.unk_id));
    LOWBIT_TRY(set_id("tokenizer.ggml.padding_token_id", v.pad_id));
    LOWBIT_TRY(w.set("tokenizer.ggml.add_bos_token", Value::boolean(v.add_bos)));
    LOWBIT_TRY(w.set("tokenizer.ggml.add_eos_token", Value::boolean(v.add_eos)));
    if (v.model == "llama") LOWBIT_TRY(w.set("tokenizer.ggml.add_space_prefix", Value::boolean(v.add_space_prefix)));
    if (!v.chat_template.empty()) LOWBIT_TRY(w.set("tokenizer.chat_template", Value::string(v.chat_template)));
    return ok_status();
}

} // namespace lowbit::pipeline
