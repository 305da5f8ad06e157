// SPDX-License-Identifier: MIT
// vocab_from_gguf / config_from_gguf on llama.cpp's vocab and golden files (shared data) and on synthetic files
// that exercise defaults and every error path.
#include "core/test_support.h"
#include "format/gguf/gguf_model.h"
#include "format/gguf/gguf_writer.h"

#include <gtest/gtest.h>

namespace lowbit::gguf {
namespace {

struct VocabCase {
    const char* file;
    const char* model;
    const char* pre;
    size_t n_tokens;
    int64_t bos, eos;
};

TEST(GgufVocab, LlamaCppVocabFiles) {
    LOWBIT_REQUIRE_SHARED(dir, "data/vocab");
    // model/pre from data/vocab/README.md (llama-spm's pre is stored as "default"); sizes are the published
    // vocabularies (Llama 2: 32000, GPT-2: 50257, Falcon: 65024, StarCoder2: 49152, DeepSeek-Coder: 32256).
    const VocabCase cases[] = {
        {"llama-spm", "llama", "default", 32000, 1, 2},
        {"gpt-2", "gpt2", "gpt-2", 50257, 50256, 50256},
        {"falcon", "gpt2", "falcon", 65024, 11, 11},
        {"starcoder", "gpt2", "starcoder", 49152, 0, 0},
        {"deepseek-coder", "gpt2", "deepseek-coder", 32256, 32013, 32014},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.file);
        auto f = File::open(dir + "/ggml-vocab-" + c.file + ".gguf");
        ASSERT_TRUE(f.ok()) << f.error().message;
        auto v = vocab_from_gguf(**f);
        ASSERT_TRUE(v.ok()) << v.error().message;
        EXPECT_EQ(v->model, c.model);
        EXPECT_EQ(v->pre, c.pre);
        EXPECT_EQ(v->tokens.size(), c.n_tokens);
        EXPECT_EQ(v->bos_id, c.bos);
        EXPECT_EQ(v->eos_id, c.eos);
        EXPECT_EQ(v->token_types.size(), c.n_tokens);
        const bool spm = std::string(c.model) == "llama";
        EXPECT_EQ(v->scores.size(), spm ? c.n_tokens : 0u);
        EXPECT_EQ(v->merges.empty(), spm);
        if (spm) {
            EXPECT_EQ(v->tokens[1], "<s>");
            EXPECT_EQ(v->tokens[3], "<0x00>");
            EXPECT_EQ(v->token_types[3], format::TokenType::kByte);
            EXPECT_EQ(v->unk_id, 0);
            EXPECT_TRUE(v->add_bos);
            EXPECT_TRUE(v->add_space_prefix);
        } else {
            EXPECT_FALSE(v->add_space_prefix);
            EXPECT_EQ(v->merges[0].find(' ') != std::string::npos, true) << v->merges[0];
        }
    }
}

TEST(GgufConfig, GoldenLlama) {
    LOWBIT_REQUIRE_SHARED(path, "data/golden/llamacpp/golden-Q4_K_M.gguf");
    auto f = File::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    auto c = config_from_gguf(**f);
    ASSERT_TRUE(c.ok()) << c.error().message;
    // Values from data/golden/llamacpp/README.md.
    EXPECT_EQ(c->arch, "llama");
    EXPECT_EQ(c->hf_architecture, "LlamaForCausalLM");
    EXPECT_EQ(c->hidden_size, 256);
    EXPECT_EQ(c->n_layers, 8);
    EXPECT_EQ(c->n_heads, 4);
    EXPECT_EQ(c->n_kv_heads, 2);
    EXPECT_EQ(c->head_dim, 64);
    EXPECT_EQ(c->intermediate_size, 512);
    EXPECT_EQ(c->vocab_size, 1024);
    EXPECT_EQ(c->max_position_embeddings, 1024);
    EXPECT_FLOAT_EQ(c->rope_theta, 10000.f);
    EXPECT_FLOAT_EQ(c->rms_norm_eps, 1e-5f);
    EXPECT_FALSE(c->tie_word_embeddings); // "untied output head"
    EXPECT_FALSE(c->attention_bias);
    EXPECT_EQ(c->rope_scaling.type, "");
    auto v = vocab_from_gguf(**f);
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v->tokens.size(), 1024u); // "the first 1024 of llama-spm"
}

TEST(GgufConfig, VocabFilesArchitectures) {
    LOWBIT_REQUIRE_SHARED(dir, "data/vocab");
    auto ds = File::open(dir + "/ggml-vocab-deepseek-coder.gguf");
    ASSERT_TRUE(ds.ok());
    auto c = config_from_gguf(**ds);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->rope_scaling.type, "linear");
    EXPECT_FLOAT_EQ(c->rope_scaling.factor, 4.f);
    EXPECT_EQ(c->vocab_size, 32256);
    auto gpt2 = File::open(dir + "/ggml-vocab-gpt-2.gguf");
    ASSERT_TRUE(gpt2.ok());
    auto e = config_from_gguf(**gpt2);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(e.error().message.find("architecture 'gpt2'"), std::string::npos) << e.error().message;
}

// A small qwen2-style file: only the keys a test sets.
std::shared_ptr<File> open_written(const Writer& w, std::vector<uint8_t>& storage) {
    auto bytes = w.write_to_memory();
    EXPECT_TRUE(bytes.ok());
    storage = std::move(*bytes);
    auto f = File::open_memory(storage);
    EXPECT_TRUE(f.ok()) << f.error().message;
    return f.ok() ? *f : nullptr;
}

Writer base_qwen2() {
    Writer w;
    (void)w.set("general.architecture", Value::string("qwen2"));
    (void)w.set("qwen2.embedding_length", Value::u32(64));
    (void)w.set("qwen2.block_count", Value::u32(2));
    (void)w.set("qwen2.feed_forward_length", Value::u32(128));
    (void)w.set("qwen2.attention.head_count", Value::u32(4));
    (void)w.set("tokenizer.ggml.model", Value::string("gpt2"));
    (void)w.set("tokenizer.ggml.tokens", Value::string_array({"a", "b", "c"}));
    return w;
}

TEST(GgufConfig, DefaultsAndTensorDerivedFlags) {
    Writer w = base_qwen2();
    ASSERT_TRUE(w.add_tensor("blk.0.attn_q.bias", DType::kF32, Shape{64}, std::vector<uint8_t>(256)).ok());
    std::vector<uint8_t> buf;
    auto f = open_written(w, buf);
    ASSERT_TRUE(f);
    auto c = config_from_gguf(*f);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->hf_architecture, "Qwen2ForCausalLM");
    EXPECT_EQ(c->n_kv_heads, 4); // defaults to head_count
    EXPECT_EQ(c->head_dim, 16);  // 64 / 4
    EXPECT_EQ(c->vocab_size, 3); // token count fallback
    EXPECT_TRUE(c->tie_word_embeddings);
    EXPECT_TRUE(c->attention_bias);
    EXPECT_FLOAT_EQ(c->rope_theta, 10000.f);
}

TEST(GgufConfig, Errors) {
    struct Case {
        const char* key;
        Value value;
        ErrorCode code;
        const char* substring;
    };
    const Case cases[] = {
        {"general.architecture", Value::string("mamba"), ErrorCode::kUnsupported, "architecture 'mamba'"},
        {"qwen2.block_count", Value::string("two"), ErrorCode::kBadInput, "'qwen2.block_count' has type string"},
        {"qwen2.block_count", Value::i32(0), ErrorCode::kBadInput, "'qwen2.block_count' is 0"},
        {"qwen2.attention.head_count_kv", Value::u32(3), ErrorCode::kBadInput, "not a multiple of head_count_kv"},
        {"qwen2.rope.dimension_count", Value::u32(8), ErrorCode::kUnsupported, "partial rotary"},
        {"qwen2.rope.scaling.type", Value::string("yarn"), ErrorCode::kUnsupported, "'yarn' is not supported"},
        {"qwen2.block_count", Value::u64(uint64_t(1) << 62), ErrorCode::kBadInput,
         "qwen2.block_count is 4611686018427387904, expected 1 to 4096"},
        {"qwen2.vocab_size", Value::u64(uint64_t(1) << 40), ErrorCode::kBadInput, "qwen2.vocab_size is 1099511627776"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.key);
        Writer w = base_qwen2();
        ASSERT_TRUE(w.set(c.key, c.value).ok());
        std::vector<uint8_t> buf;
        auto f = open_written(w, buf);
        ASSERT_TRUE(f);
        auto r = config_from_gguf(*f);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().code, c.code);
        EXPECT_NE(r.error().message.find(c.substring), std::string::npos) << r.error().message;
    }
    Writer w = base_qwen2();
    w.remove("qwen2.feed_forward_length");
    std::vector<uint8_t> buf;
    auto f = open_written(w, buf);
    auto r = config_from_gguf(*f);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("'qwen2.feed_forward_length' is missing"), std::string::npos);
}

TEST(GgufVocab, DefaultsAndErrors) {
    {
        Writer w = base_qwen2();
        ASSERT_TRUE(w.set("tokenizer.ggml.padding_token_id", Value::u32(3)).ok()); // == n_vocab: ignored
        ASSERT_TRUE(w.set("tokenizer.ggml.eot_token_id", Value::u32(2)).ok());
        ASSERT_TRUE(w.set("tokenizer.chat_template", Value::string("{{ x }}")).ok());
        std::vector<uint8_t> buf;
        auto f = open_written(w, buf);
        auto v = vocab_from_gguf(*f);
        ASSERT_TRUE(v.ok()) << v.error().message;
        EXPECT_EQ(v->pad_id, -1);
        EXPECT_EQ(v->eot_id, 2);
        EXPECT_EQ(v->pre, "");
        EXPECT_FALSE(v->add_bos);
        EXPECT_TRUE(v->scores.empty());
        EXPECT_EQ(v->chat_template, "{{ x }}");
    }
    struct Case {
        const char* key;
        Value value;
        const char* substring;
    };
    const Case cases[] = {
        {"tokenizer.ggml.tokens", Value::array(ValueType::kString, {}), "no tokenizer.ggml.tokens"},
        {"tokenizer.ggml.tokens", Value::i32_array({1}), "is an array of i32, expected an array of string"},
        {"tokenizer.ggml.scores", Value::f32_array({1.f}), "scores has 1 entries, expected one per token (3)"},
        {"tokenizer.ggml.token_type", Value::i32_array({1, 9, 1}), "token_type[1] is 9"},
        {"tokenizer.ggml.add_bos_token", Value::u8(1), "'tokenizer.ggml.add_bos_token' has type u8, expected bool"},
        {"tokenizer.ggml.model", Value::u8(1), "'tokenizer.ggml.model' has type u8"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.key);
        Writer w = base_qwen2();
        ASSERT_TRUE(w.set(c.key, c.value).ok());
        std::vector<uint8_t> buf;
        auto f = open_written(w, buf);
        auto v = vocab_from_gguf(*f);
        ASSERT_FALSE(v.ok());
        EXPECT_EQ(v.error().code, ErrorCode::kBadInput);
        EXPECT_NE(v.error().message.find(c.substring), std::string::npos) << v.error().message;
    }
    Writer w = base_qwen2();
    w.remove("tokenizer.ggml.tokens");
    std::vector<uint8_t> buf;
    auto f = open_written(w, buf);
    EXPECT_FALSE(vocab_from_gguf(*f).ok());
}

} // namespace
} // namespace lowbit::gguf
