// SPDX-License-Identifier: MIT
// HF config.json parsing, HF <-> GGUF names, the Q/K permutation and tokenizer.json -> VocabData.
#include "format/hf/hf_model.h"
#include "format/hf/names.h"
#include "format/hf/tokenizer_json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <numeric>

namespace lowbit::hf {
namespace {

const char* kLlama = R"({"architectures":["LlamaForCausalLM"],"vocab_size":512,"hidden_size":64,
  "intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"max_position_embeddings":256,
  "rms_norm_eps":1e-5,"rope_theta":500000.0,"bos_token_id":1,"eos_token_id":[2,3],"torch_dtype":"bfloat16"})";

// Issue #15: counts from the file are bounded before anything is sized by them; negative positions and a
// non-positive rope factor are refused at parse time.
TEST(HfConfigTest, RefusesAbsurdCountsNegativePositionsAndBadRopeFactor) {
    auto with = [](const std::string& key, const std::string& value) {
        nlohmann::json j = nlohmann::json::parse(kLlama);
        j[key] = nlohmann::json::parse(value);
        return parse_hf_config_json(j.dump(), "");
    };
    struct Case {
        const char* key;
        const char* value;
        const char* substring;
    };
    const Case cases[] = {
        {"num_hidden_layers", "4611686018427387904", "num_hidden_layers is 4611686018427387904, expected 1 to 4096"},
        {"vocab_size", "16777217", "vocab_size is 16777217, expected 1 to 16777216"},
        {"hidden_size", "4611686018427387904", "hidden_size is 4611686018427387904"},
        {"num_key_value_heads", "4611686018427387904", "num_key_value_heads"},
        {"max_position_embeddings", "-5", "max_position_embeddings is -5, expected 0 to 4294967295 (0 = unknown)"},
        {"rope_scaling", R"({"rope_type":"linear","factor":0})",
         "rope_scaling linear has factor 0, expected a positive"},
        {"rope_scaling", R"({"rope_type":"linear","factor":-2.5})", "has factor -2.5, expected a positive"},
        {"rope_scaling", R"({"rope_type":"llama3","factor":0})", "rope_scaling llama3 has factor 0"},
        {"tie_word_embeddings", R"("yes")", "a field has an unexpected type"}, // nlohmann threw here
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.key);
        auto r = with(c.key, c.value);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
        EXPECT_NE(r.error().message.find(c.substring), std::string::npos) << r.error().message;
    }
    auto zero = with("max_position_embeddings", "0"); // unknown: fine
    EXPECT_TRUE(zero.ok()) << zero.error().message;
}

TEST(HfConfigTest, LlamaDefaults) {
    auto c = parse_hf_config_json(kLlama, "");
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->arch, "llama");
    EXPECT_EQ(c->n_kv_heads, 4); // defaults to heads
    EXPECT_EQ(c->head_dim, 16);  // hidden / heads
    EXPECT_FLOAT_EQ(c->rope_theta, 500000.0f);
    EXPECT_FALSE(c->attention_bias);
    EXPECT_FALSE(c->tie_word_embeddings);
    EXPECT_EQ(c->bos_token_ids, std::vector<int64_t>{1});
    EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(c->torch_dtype, "bfloat16");
    EXPECT_TRUE(c->rope_scaling.type.empty());
    auto g = parse_hf_config_json(kLlama, R"({"bos_token_id":7,"eos_token_id":8})");
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(g->bos_token_ids, std::vector<int64_t>{7});
    EXPECT_EQ(g->eos_token_ids, std::vector<int64_t>{8});
}

TEST(HfConfigTest, Qwen2AndRopeScaling) {
    auto q = parse_hf_config_json(R"({"architectures":["Qwen2ForCausalLM"],"vocab_size":10,"hidden_size":64,
      "intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":32,
      "tie_word_embeddings":true})",
                                  "");
    ASSERT_TRUE(q.ok()) << q.error().message;
    EXPECT_EQ(q->arch, "qwen2");
    EXPECT_TRUE(q->attention_bias);
    EXPECT_TRUE(q->tie_word_embeddings);
    EXPECT_EQ(q->head_dim, 32);
    EXPECT_EQ(q->n_kv_heads, 2);
    auto r = parse_hf_config_json(R"({"architectures":["MistralForCausalLM"],"vocab_size":10,"hidden_size":64,
      "intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4,"attention_bias":true,
      "rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
      "original_max_position_embeddings":8192}})",
                                  "");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->arch, "llama");
    EXPECT_TRUE(r->attention_bias);
    EXPECT_EQ(r->rope_scaling.type, "llama3");
    EXPECT_FLOAT_EQ(r->rope_scaling.factor, 8.0f);
    EXPECT_FLOAT_EQ(r->rope_scaling.high_freq_factor, 4.0f);
    EXPECT_EQ(r->rope_scaling.original_max_position_embeddings, 8192);
}

TEST(HfConfigTest, Errors) {
    auto neox = parse_hf_config_json(R"({"architectures":["GPTNeoXForCausalLM"]})", "");
    ASSERT_FALSE(neox.ok());
    EXPECT_EQ(neox.error().code, ErrorCode::kUnsupported);
    EXPECT_EQ(neox.error().message, "architecture 'GPTNeoXForCausalLM' is not supported (supported: LlamaForCausalLM, "
                                    "MistralForCausalLM, Qwen2ForCausalLM)");
    auto missing = parse_hf_config_json(R"({"architectures":["LlamaForCausalLM"],"vocab_size":5})", "");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, ErrorCode::kBadInput);
    EXPECT_NE(missing.error().message.find("hidden_size"), std::string::npos);
    EXPECT_EQ(parse_hf_config_json("{not json", "").error().code, ErrorCode::kBadInput);
    std::string gqa = kLlama;
    gqa.replace(gqa.find("\"max_position"), 0, "\"num_key_value_heads\":3,");
    EXPECT_NE(parse_hf_config_json(gqa, "").error().message.find("not a multiple of num_key_value_heads"),
              std::string::npos);
    EXPECT_FALSE(parse_hf_config("/nonexistent/dir").ok());
}

TEST(HfNamesTest, MapsBothWays) {
    const std::pair<const char*, const char*> pairs[] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"},
        {"model.layers.12.self_attn.q_proj.weight", "blk.12.attn_q.weight"},
        {"model.layers.3.self_attn.k_proj.bias", "blk.3.attn_k.bias"},
        {"model.layers.3.self_attn.v_proj.weight", "blk.3.attn_v.weight"},
        {"model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight"},
        {"model.layers.3.post_attention_layernorm.weight", "blk.3.ffn_norm.weight"},
        {"model.layers.3.mlp.gate_proj.weight", "blk.3.ffn_gate.weight"},
        {"model.layers.3.mlp.up_proj.weight", "blk.3.ffn_up.weight"},
        {"model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    for (const auto& [h, g] : pairs) {
        EXPECT_EQ(hf_to_gguf_name(h).value_or("?"), g);
        EXPECT_EQ(gguf_to_hf_name(g).value_or("?"), h);
    }
    EXPECT_FALSE(hf_to_gguf_name("model.layers.x.mlp.up_proj.weight"));
    EXPECT_FALSE(hf_to_gguf_name("model.layers.1.mlp.experts.weight"));
    EXPECT_FALSE(gguf_to_hf_name("blk.01.attn_q.weight"));
    EXPECT_EQ(qk_kind("blk.1.attn_q.weight"), 'q');
    EXPECT_EQ(qk_kind("blk.1.attn_k.bias"), 'k');
    EXPECT_EQ(qk_kind("blk.1.attn_v.weight"), 0);
}

TEST(HfNamesTest, PermutationMatchesNumpyReshapeSwapaxes) {
    // numpy: np.arange(8).reshape(2, 2, 2).swapaxes(1, 2).reshape(8) == [0, 2, 1, 3, 4, 6, 5, 7]
    std::vector<int32_t> src(8), dst(8), back(8);
    std::iota(src.begin(), src.end(), 0);
    ASSERT_TRUE(permute_qk_rows(src.data(), dst.data(), 8, 4, 2));
    EXPECT_EQ(dst, (std::vector<int32_t>{0, 2, 1, 3, 4, 6, 5, 7}));
    // rows of 12 with 1 head: arange(12).reshape(1, 2, 6).swapaxes(1, 2) -> 0 6 1 7 2 8 3 9 4 10 5 11
    std::vector<int32_t> s12(12), d12(12), b12(12);
    std::iota(s12.begin(), s12.end(), 0);
    ASSERT_TRUE(permute_qk_rows(s12.data(), d12.data(), 12, 4, 1));
    EXPECT_EQ(d12, (std::vector<int32_t>{0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11}));
    ASSERT_TRUE(permute_qk_rows(d12.data(), b12.data(), 12, 4, 1, /*inverse=*/true));
    EXPECT_EQ(b12, s12);
    ASSERT_TRUE(permute_qk_rows(dst.data(), back.data(), 8, 4, 2, true));
    EXPECT_EQ(back, src);
    EXPECT_FALSE(permute_qk_rows(src.data(), dst.data(), 6, 4, 2)); // 6 rows cannot split into 2 heads x 2 halves
}

const char* kByteLevel = R"({
  "added_tokens":[{"id":5,"content":"<s>","special":true},{"id":6,"content":"<x>","special":false}],
  "pre_tokenizer":{"type":"Sequence","pretokenizers":[
     {"type":"Split","pattern":{"Regex":"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false},
     {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]},
  "model":{"type":"BPE","byte_fallback":false,"vocab":{"a":0,"b":1,"ab":2,"Ġ":3,"Ġab":4},
           "merges":["a b",["Ġ","ab"]]}})";

TEST(TokenizerJsonTest, ByteLevelBpeIsGpt2WithLlamaBpePre) {
    auto v = parse_tokenizer_json(kByteLevel, R"({"bos_token":"<s>","eos_token":{"content":"<x>"},"add_bos_token":true,
      "chat_template":"{{ x }}"})",
                                  9);
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v->model, "gpt2");
    EXPECT_EQ(v->pre, "llama-bpe");
    EXPECT_EQ(v->tokens, (std::vector<std::string>{"a", "b", "ab", "Ġ", "Ġab", "<s>", "<x>", "[PAD7]", "[PAD8]"}));
    EXPECT_EQ(v->merges, (std::vector<std::string>{"a b", "Ġ ab"}));
    EXPECT_EQ(v->token_types[0], format::TokenType::kNormal);
    EXPECT_EQ(v->token_types[5], format::TokenType::kControl);
    EXPECT_EQ(v->token_types[6], format::TokenType::kUserDefined);
    EXPECT_EQ(v->token_types[8], format::TokenType::kUnused);
    EXPECT_EQ(v->bos_id, 5);
    EXPECT_EQ(v->eos_id, 6);
    EXPECT_TRUE(v->add_bos);
    EXPECT_EQ(v->chat_template, "{{ x }}");
    EXPECT_TRUE(v->scores.empty());
}

TEST(TokenizerJsonTest, PreDetectionAndSentencePieceStyle) {
    EXPECT_EQ(
        pre_from_regex(
            R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"),
        "qwen2");
    EXPECT_EQ(pre_from_regex("x+"), "");
    auto gpt2 = parse_tokenizer_json(
        R"({"pre_tokenizer":{"type":"ByteLevel","use_regex":true},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}})",
        "");
    ASSERT_TRUE(gpt2.ok());
    EXPECT_EQ(gpt2->pre, "gpt-2");
    auto other = parse_tokenizer_json(
        R"({"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\d"}},{"type":"ByteLevel","use_regex":false}]},
            "model":{"type":"BPE","vocab":{"a":0},"merges":[]}})",
        "");
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(other->pre, "default");
    // Multi-step sequences: Digits steps and ByteLevel's own regex count as steps.
    auto starcoder = parse_tokenizer_json(
        R"({"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"ByteLevel","use_regex":true}]},
            "model":{"type":"BPE","vocab":{"a":0},"merges":[]}})",
        "");
    ASSERT_TRUE(starcoder.ok());
    EXPECT_EQ(starcoder->pre, "starcoder");
    auto coder = parse_tokenizer_json(
        R"({"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"[\r\n]"}},
            {"type":"Split","pattern":{"Regex":"\\s?\\p{L}+"}},{"type":"Split","pattern":{"Regex":"\\s?\\p{P}+"}},
            {"type":"Split","pattern":{"Regex":"[一-龥ࠀ-一가-퟿]+"}},{"type":"Digits","individual_digits":true},
            {"type":"ByteLevel","use_regex":false}]},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}})",
        "");
    ASSERT_TRUE(coder.ok());
    EXPECT_EQ(coder->pre, "deepseek-coder");
    // Same regex, the model's ignore_merges picks the row: Llama 3 ignores merges, DBRX does not.
    for (const bool ignore : {true, false}) {
        auto llama = parse_tokenizer_json(
            std::string(R"({"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":)") +
                R"("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},)" +
                R"({"type":"ByteLevel","use_regex":false}]},"model":{"type":"BPE","ignore_merges":)" +
                (ignore ? "true" : "false") + R"(,"vocab":{"a":0},"merges":[]}})",
            "");
        ASSERT_TRUE(llama.ok()) << llama.error().message;
        EXPECT_EQ(llama->pre, ignore ? "llama-bpe" : "dbrx");
    }
    auto spm = parse_tokenizer_json(
        R"({"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace"}]},
            "added_tokens":[{"id":1,"content":"<s>","special":true}],
            "model":{"type":"BPE","byte_fallback":true,"unk_token":"<unk>",
                     "vocab":{"<unk>":0,"<s>":1,"<0x41>":2,"▁a":3},"merges":["▁ a"]}})",
        "");
    ASSERT_TRUE(spm.ok()) << spm.error().message;
    EXPECT_EQ(spm->model, "llama");
    EXPECT_EQ(spm->unk_id, 0);
    EXPECT_EQ(spm->token_types[0], format::TokenType::kUnknown);
    EXPECT_EQ(spm->token_types[1], format::TokenType::kControl);
    EXPECT_EQ(spm->token_types[2], format::TokenType::kByte);
    EXPECT_EQ(spm->token_types[3], format::TokenType::kNormal);
    EXPECT_EQ(spm->scores, (std::vector<float>{0.0f, -1.0f, -2.0f, -3.0f}));
    EXPECT_TRUE(spm->add_space_prefix);
    EXPECT_TRUE(spm->add_bos);
    auto uni = parse_tokenizer_json(R"({"model":{"type":"Unigram","vocab":[]}})", "");
    ASSERT_FALSE(uni.ok());
    EXPECT_EQ(uni.error().code, ErrorCode::kUnsupported);
    EXPECT_FALSE(parse_tokenizer_json(R"({"model":{"type":"BPE","vocab":{"a":0,"b":0}}})", "").ok());
    EXPECT_FALSE(
        parse_tokenizer_json(
            R"({"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0},"merges":[1]}})", "")
            .ok());
}

} // namespace
} // namespace lowbit::hf
