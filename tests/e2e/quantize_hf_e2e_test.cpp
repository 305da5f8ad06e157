// SPDX-License-Identifier: MIT
// e2e: `lowbit quantize --method rtn|int8|nf4|fp4|hqq` on a tiny llama (tests/fixtures/make_tiny_llama.py,
// hidden 128, ff 256, bf16): the directory layout, config.json quantization_config, the record names per Linear
// (read back with lowbit's safetensors reader), kept tensors, the report table, and bad options -> exit 2.
// The values are checked against numpy re-dequantization in tests/oracle/test_quantize_hf_oracle.py.
#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>

// GCC 12 reports a false -Wrestrict inside run_binary.h's string concatenation when it inlines run_lowbit.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#include "e2e/run_binary.h"
#pragma GCC diagnostic pop
#include "format/safetensors/safetensors_reader.h"

namespace lowbit::e2e {
namespace {

namespace fs = std::filesystem;

class QuantizeHf : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = ::testing::TempDir() + "/lowbit_quantize_hf_e2e_" + std::to_string(::getpid());
        if (std::system("python3 -c 'import numpy, tokenizers' >/dev/null 2>&1") != 0) return;
        const std::string cmd = "python3 " +
                                shell_quote(std::string(LOWBIT_SOURCE_DIR) + "/tests/fixtures/make_tiny_llama.py") +
                                " --out " + shell_quote(dir_ + "/src") +
                                " --hidden 128 --ff 256 --dtype bf16 --tokenizer --seed 1 >/dev/null";
        ok_ = std::system(cmd.c_str()) == 0;
        made_ = true;
    }
    static void TearDownTestSuite() {
        if (made_) fs::remove_all(dir_);
    }
    void SetUp() override {
        if (!made_) GTEST_SKIP() << "python3 with numpy and tokenizers is needed to build the tiny model";
        ASSERT_TRUE(ok_) << "make_tiny_llama.py failed";
    }
    static std::string src() { return dir_ + "/src"; }
    static nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(slurp(path)); }

    // Quantizes with `method` (+ extra args) and returns the record suffixes of layer 1's down_proj.
    static std::set<std::string> quantize_and_list(const std::string& method, const std::string& out,
                                                   const std::vector<std::string>& extra = {}) {
        std::vector<std::string> args = {"quantize", "-m",   src(),           "-o", out,
                                         "--method", method, "--no-progress", "-t", "2"};
        args.insert(args.end(), extra.begin(), extra.end());
        const RunResult r = run_lowbit(args);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find("bpw"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("wrote " + out), std::string::npos) << r.out;
        auto store = safetensors::Store::open(out + "/model.safetensors");
        EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
        std::set<std::string> keys;
        if (!store.ok()) return keys;
        const std::string mod = "model.layers.1.mlp.down_proj.";
        for (const auto& t : (*store)->tensors()) {
            if (t.name.rfind(mod, 0) == 0) keys.insert(t.name.substr(mod.size()));
            // Non-Linear tensors keep their bf16 source dtype.
            if (t.name.find("norm") != std::string::npos || t.name.find("embed") != std::string::npos ||
                t.name == "lm_head.weight") {
                EXPECT_EQ(t.dtype, DType::kBF16) << t.name;
            }
        }
        EXPECT_EQ((*store)->metadata().at("lowbit.method"), method);
        EXPECT_EQ((*store)->metadata().at("format"), "pt");
        return keys;
    }
    static inline std::string dir_;
    static inline bool made_ = false, ok_ = false;
};

TEST_F(QuantizeHf, Nf4WritesBitsandbytesLayout) {
    const std::string out = dir_ + "/nf4";
    const auto keys = quantize_and_list("nf4", out);
    EXPECT_EQ(keys, (std::set<std::string>{"weight", "weight.absmax", "weight.quant_map", "weight.nested_absmax",
                                           "weight.nested_quant_map", "weight.quant_state.bitsandbytes__nf4"}));
    for (const char* f :
         {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
        EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
    const auto cfg = read_json(out + "/config.json");
    const auto& q = cfg.at("quantization_config");
    EXPECT_EQ(q.at("quant_method"), "bitsandbytes");
    EXPECT_EQ(q.at("load_in_4bit"), true);
    EXPECT_EQ(q.at("_load_in_4bit"), true);
    EXPECT_EQ(q.at("load_in_8bit"), false);
    EXPECT_EQ(q.at("bnb_4bit_quant_type"), "nf4");
    EXPECT_EQ(q.at("bnb_4bit_use_double_quant"), true);
    EXPECT_EQ(q.at("bnb_4bit_compute_dtype"), "bfloat16");
    EXPECT_EQ(q.at("bnb_4bit_quant_storage"), "uint8");
    EXPECT_EQ(q.at("llm_int8_threshold"), 6.0);
    EXPECT_TRUE(q.at("llm_int8_skip_modules").is_null());
    EXPECT_EQ(cfg.at("hidden_size"), 128); // the input config is kept
    const auto in_gen = read_json(src() + "/generation_config.json");
    EXPECT_EQ(read_json(out + "/generation_config.json"), in_gen);
}

TEST_F(QuantizeHf, Fp4WithoutDoubleQuantKeepsF32Absmax) {
    const auto keys = quantize_and_list("fp4", dir_ + "/fp4", {"--no-double-quant", "--block-size", "128"});
    EXPECT_EQ(keys, (std::set<std::string>{"weight", "weight.absmax", "weight.quant_map",
                                           "weight.quant_state.bitsandbytes__fp4"}));
    const auto q = read_json(dir_ + "/fp4/config.json").at("quantization_config");
    EXPECT_EQ(q.at("bnb_4bit_quant_type"), "fp4");
    EXPECT_EQ(q.at("bnb_4bit_use_double_quant"), false);
    auto store = safetensors::Store::open(dir_ + "/fp4/model.safetensors");
    ASSERT_TRUE(store.ok());
    const auto* absmax = (*store)->find("model.layers.0.mlp.down_proj.weight.absmax");
    ASSERT_NE(absmax, nullptr);
    EXPECT_EQ(absmax->dtype, DType::kF32);
    EXPECT_EQ(absmax->shape, (Shape{128 * 256 / 128}));
}

TEST_F(QuantizeHf, Int8WritesLinear8bitLtLayout) {
    const auto keys = quantize_and_list("int8", dir_ + "/int8");
    EXPECT_EQ(keys, (std::set<std::string>{"weight", "SCB", "weight_format"}));
    const auto q = read_json(dir_ + "/int8/config.json").at("quantization_config");
    EXPECT_EQ(q.at("load_in_8bit"), true);
    EXPECT_EQ(q.at("load_in_4bit"), false);
    auto store = safetensors::Store::open(dir_ + "/int8/model.safetensors");
    ASSERT_TRUE(store.ok());
    const auto* w = (*store)->find("model.layers.0.self_attn.k_proj.weight");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->dtype, DType::kI8);
    EXPECT_EQ(w->shape, (Shape{64, 128}));
}

TEST_F(QuantizeHf, HqqWritesEncodedStateDict) {
    const auto keys = quantize_and_list("hqq", dir_ + "/hqq");
    const std::set<std::string> want = {"W_q",
                                        "nbits",
                                        "group_size",
                                        "shape",
                                        "scale",
                                        "zero",
                                        "axis",
                                        "packing",
                                        "unpack_view_dtype",
                                        "view_as_float",
                                        "quant_scale",
                                        "quant_zero",
                                        "compute_dtype",
                                        "offload_meta",
                                        "encoded_state_dict",
                                        "stores_quant_config",
                                        "channel_wise",
                                        "optimize",
                                        "round_zero"};
    EXPECT_EQ(keys, want);
    const auto q = read_json(dir_ + "/hqq/config.json").at("quantization_config");
    EXPECT_EQ(q.at("quant_method"), "hqq");
    EXPECT_EQ(q.at("skip_modules"), nlohmann::json::array({"lm_head"}));
    const auto& w = q.at("quant_config").at("weight_quant_params");
    EXPECT_EQ(w.at("nbits"), 4);
    EXPECT_EQ(w.at("group_size"), 64);
    EXPECT_EQ(w.at("axis"), 1);
    EXPECT_EQ(w.at("round_zero"), true);
}

TEST_F(QuantizeHf, RtnWritesIntGroupLayoutWithOptions) {
    const auto keys = quantize_and_list("rtn", dir_ + "/rtn3", {"--bits", "3", "--group-size", "64", "--sym"});
    EXPECT_EQ(keys, (std::set<std::string>{"qweight", "scales"})); // symmetric: no zeros
    const auto q = read_json(dir_ + "/rtn3/config.json").at("quantization_config");
    EXPECT_EQ(q, nlohmann::json::parse(
                     R"({"quant_method":"lowbit_rtn","bits":3,"group_size":64,"sym":true,"layout":"int_group_v1"})"));
    auto store = safetensors::Store::open(dir_ + "/rtn3/model.safetensors");
    ASSERT_TRUE(store.ok());
    const auto* qw = (*store)->find("model.layers.0.mlp.down_proj.qweight");
    ASSERT_NE(qw, nullptr);
    EXPECT_EQ(qw->shape, (Shape{128, 256 * 3 / 32}));
}

TEST_F(QuantizeHf, RerunReplacesOutputAndReportsRows) {
    const std::string out = dir_ + "/rerun";
    quantize_and_list("rtn", out);
    const RunResult r = run_lowbit({"quantize", "-m", src(), "-o", out, "--method", "nf4", "--no-progress"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("nf4"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("bf16"), std::string::npos) << r.out;
    EXPECT_EQ(read_json(out + "/config.json").at("quantization_config").at("quant_method"), "bitsandbytes");
}

void expect_usage(const RunResult& r, const std::string& needle) {
    EXPECT_EQ(r.signal, 0);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("lowbit: error:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

TEST_F(QuantizeHf, BadOptionsExitTwo) {
    const std::string out = dir_ + "/bad";
    expect_usage(run_lowbit({"quantize", "-m", src(), "-o", out, "--method", "rtn", "--group-size", "100"}),
                 "--group-size 100");
    expect_usage(run_lowbit({"quantize", "-m", src(), "-o", out, "--method", "hqq", "--group-size", "100"}),
                 "--group-size 100");
    expect_usage(run_lowbit({"quantize", "-m", src(), "-o", out, "--method", "rtn", "--bits", "5"}), "--bits 5");
    expect_usage(run_lowbit({"quantize", "-m", src(), "-o", out, "--method", "hqq", "--bits", "9"}), "--bits 9");
    expect_usage(run_lowbit({"quantize", "-m", src(), "-o", out, "--method", "nf4", "--bits", "8"}), "--bits 8");
    expect_usage(run_lowbit({"quantize", "-m", src(), "-o", out, "--method", "nf4", "--block-size", "48"}),
                 "--block-size 48");
    expect_usage(run_lowbit({"quantize", "-m", src(), "-o", out, "--method", "int8", "--group-size", "64"}),
                 "--group-size");
    EXPECT_FALSE(fs::exists(out + "/model.safetensors")); // nothing written on a usage error
}

TEST_F(QuantizeHf, GgufQuantizedInputIsDequantizedFirst) {
    const std::string gg = dir_ + "/q8.gguf";
    const RunResult c = run_lowbit({"convert", src(), "-o", gg, "--type", "q8_0", "--no-progress"});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    for (const char* method : {"int8", "nf4"}) {
        const std::string out = dir_ + "/gguf_" + method;
        const RunResult r = run_lowbit({"quantize", "-m", gg, "-o", out, "--method", method, "--no-progress"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        auto store = safetensors::Store::open(out + "/model.safetensors");
        ASSERT_TRUE(store.ok());
        const auto* emb = (*store)->find("model.embed_tokens.weight");
        ASSERT_NE(emb, nullptr);
        EXPECT_EQ(emb->dtype, DType::kBF16); // q8_0 in the GGUF -> bf16
        EXPECT_NE((*store)->find("model.layers.1.self_attn.q_proj.weight"), nullptr);
        const auto cfg = read_json(out + "/config.json");
        EXPECT_EQ(cfg.at("num_hidden_layers"), 2);
        EXPECT_EQ(cfg.at("architectures"), nlohmann::json::array({"LlamaForCausalLM"}));
    }
}

} // namespace
} // namespace lowbit::e2e
