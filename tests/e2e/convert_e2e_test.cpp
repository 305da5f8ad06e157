// SPDX-License-Identifier: MIT
// e2e: `lowbit convert` on synthetic HF folders (written here with lowbit's safetensors writer): success for
// every --type, and every class of bad input -> the documented exit code, "lowbit: error:" and no crash.
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <random>

// GCC 12 reports a false -Wrestrict inside run_binary.h's string concatenation when it inlines run_lowbit.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#include "e2e/run_binary.h"
#pragma GCC diagnostic pop
#include "format/safetensors/safetensors_writer.h"

namespace lowbit::e2e {

// A tiny llama (2 layers, hidden 64, 4 heads, 2 kv heads, ff 128, vocab 96; f32) in `dir`; returns the number
// of parameters. Used by inspect_e2e_test.cpp too.
int64_t make_tiny_hf_dir(const std::string& dir, const std::string& arch = "LlamaForCausalLM", bool tied = false) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/config.json")
        << R"({"architectures":[")" << arch
        << R"("],"vocab_size":96,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,
"num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":128,"rms_norm_eps":1e-5,
"rope_theta":10000.0,"tie_word_embeddings":)"
        << (tied ? "true" : "false") << "}";
    std::vector<std::pair<std::string, Shape>> specs = {{"model.embed_tokens.weight", {96, 64}},
                                                        {"model.norm.weight", {64}}};
    if (!tied) specs.push_back({"lm_head.weight", {96, 64}});
    for (int l = 0; l < 2; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        specs.push_back({p + "input_layernorm.weight", {64}});
        specs.push_back({p + "post_attention_layernorm.weight", {64}});
        specs.push_back({p + "self_attn.q_proj.weight", {64, 64}});
        specs.push_back({p + "self_attn.k_proj.weight", {32, 64}});
        specs.push_back({p + "self_attn.v_proj.weight", {32, 64}});
        specs.push_back({p + "self_attn.o_proj.weight", {64, 64}});
        specs.push_back({p + "mlp.gate_proj.weight", {128, 64}});
        specs.push_back({p + "mlp.up_proj.weight", {128, 64}});
        specs.push_back({p + "mlp.down_proj.weight", {64, 128}});
    }
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 0.1f);
    std::vector<std::vector<float>> bufs;
    std::vector<safetensors::TensorToWrite> ts;
    int64_t n_params = 0;
    for (const auto& [name, shape] : specs) {
        bufs.emplace_back(static_cast<size_t>(shape.n_elems()));
        for (float& x : bufs.back()) x = nd(rng);
        ts.push_back({name, DType::kF32, shape, bufs.back().data(), {}});
        n_params += shape.n_elems();
    }
    auto w = safetensors::write_safetensors(dir + "/model.safetensors", ts);
    EXPECT_TRUE(w.ok());
    return n_params;
}

namespace {

std::string tmp(const std::string& name) {
    return ::testing::TempDir() + "/lowbit_convert_e2e_" + std::to_string(::getpid()) + "_" + name;
}

void expect_error(const RunResult& r, int code, const std::string& needle) {
    EXPECT_EQ(r.signal, 0);
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_NE(r.err.find("lowbit: error:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

// Replaces model.safetensors with `header` (8-byte length + JSON) followed by `n_data` zero bytes.
void write_st(const std::string& dir, const std::string& header, uint64_t n_data, std::optional<uint64_t> len = {}) {
    std::ofstream f(dir + "/model.safetensors", std::ios::binary | std::ios::trunc);
    const uint64_t n = len.value_or(header.size());
    for (int i = 0; i < 8; ++i) f.put(static_cast<char>(n >> (8 * i)));
    f << header << std::string(n_data, '\0');
}

TEST(ConvertE2E, EveryTypeSucceeds) {
    const std::string d = tmp("ok");
    make_tiny_hf_dir(d);
    for (const char* t : {"f32", "f16", "bf16", "q8_0"}) {
        const std::string out = d + "/out-" + t + ".gguf";
        RunResult r = run_lowbit({"convert", d, "-o", out, "--type", t});
        EXPECT_EQ(r.exit_code, 0) << t << ": " << r.err;
        EXPECT_TRUE(std::filesystem::exists(out)) << t;
        EXPECT_NE(r.out.find("wrote"), std::string::npos);
    }
}

TEST(ConvertE2E, BadSafetensorsAreExit3) {
    const std::string d = tmp("bad");
    make_tiny_hf_dir(d);
    const std::string out = d + "/x.gguf";
    const std::string ok1 = R"({"model.norm.weight":{"dtype":"F32","shape":[64],"data_offsets":[0,256]}})";
    struct Case {
        std::string header;
        uint64_t n_data;
        std::optional<uint64_t> len;
        std::string needle;
    } cases[] = {
        {ok1, 100, {}, "truncated"},
        {ok1, 256, 1ull << 40, "exceeds the 100000000-byte limit"},
        {R"({"model.norm.weight":{"dtype":"F32",)", 256, {}, "not valid JSON"},
        {R"({"a":{"dtype":"F32","shape":[64],"data_offsets":[0,256]},"b":{"dtype":"F32","shape":[64],"data_offsets":[128,384]}})",
         384,
         {},
         "overlaps"},
        {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
         12,
         {},
         "hole"},
        {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, {}, "needs 12 bytes"},
        {R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8, {}, "data section ends at 8"},
        {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
         8,
         {},
         "appears twice"},
        {"{\"\xc3\x28\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, {}, "not valid JSON"},
    };
    for (const Case& c : cases) {
        write_st(d, c.header, c.n_data, c.len);
        SCOPED_TRACE(c.needle);
        expect_error(run_lowbit({"convert", d, "-o", out}), 3, c.needle);
        EXPECT_FALSE(std::filesystem::exists(out));
    }
}

TEST(ConvertE2E, FolderProblems) {
    const std::string d = tmp("folder");
    make_tiny_hf_dir(d, "GPTNeoXForCausalLM");
    expect_error(run_lowbit({"convert", d, "-o", d + "/x.gguf"}), 4,
                 "architecture 'GPTNeoXForCausalLM' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
                 "Qwen2ForCausalLM)");
    make_tiny_hf_dir(d);
    std::filesystem::rename(d + "/model.safetensors", d + "/model-00001-of-00002.safetensors");
    std::ofstream(d + "/model.safetensors.index.json")
        << R"({"weight_map":{"model.norm.weight":"model-00001-of-00002.safetensors","lm_head.weight":"model-00002-of-00002.safetensors"}})";
    expect_error(run_lowbit({"convert", d, "-o", d + "/x.gguf"}), 3, "model-00002-of-00002.safetensors");
    std::filesystem::remove(d + "/config.json");
    expect_error(run_lowbit({"convert", d, "-o", d + "/x.gguf"}), 3, "no config.json");
    std::ofstream(d + "/config.json") << "{oops";
    expect_error(run_lowbit({"convert", d, "-o", d + "/x.gguf"}), 3, "not valid JSON");
    RunResult r = run_lowbit({"convert", d, "-o", d + "/x.gguf", "--type", "q4_k"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    make_tiny_hf_dir(d);
    std::ofstream(d + "/config.json") << R"({"architectures":["LlamaForCausalLM"],"vocab_size":100,"hidden_size":64,
"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2})";
    expect_error(run_lowbit({"convert", d, "-o", d + "/x.gguf"}), 3,
                 "tensor 'model.embed_tokens.weight' has shape [96, 64] but config.json implies [100, 64]");
    make_tiny_hf_dir(d);
    std::ofstream(d + "/config.json") << R"({"architectures":["LlamaForCausalLM"],"vocab_size":96,"hidden_size":64,
"intermediate_size":128,"num_hidden_layers":3,"num_attention_heads":4,"num_key_value_heads":2})";
    expect_error(run_lowbit({"convert", d, "-o", d + "/x.gguf"}), 3,
                 "'model.layers.2.input_layernorm.weight' is missing");
}

} // namespace
} // namespace lowbit::e2e
