// SPDX-License-Identifier: MIT
// e2e: quantized Hugging Face directories -> GGUF (issue #17 item 2). A tiny bf16 llama (hidden 256 so the
// k-quants apply) is quantized with every HF-style layout lowbit writes (nf4, fp4, int8, hqq, rtn, gptq, awq);
// each directory must then
//   - `lowbit convert DIR --type f16|f32`: succeed with the "already quantized" warning, and give the perplexity
//     of running DIR itself (the dequantized weights at load): f32 within 1e-6, f16 within 5e-4 (LLM.int8: the
//     directory runs int8 activations with the outlier decomposition, the GGUF the dequantized weights: 5e-3);
//     measured (nf4, rtn3): f32 3e-8, f16 4e-5 and 7e-5, LLM.int8 1.7e-3, while quantizing moves it 2 %;
//   - `lowbit quantize -m DIR --method q8_0|q4_0|q4_k_m`: succeed with the "requantizing compounds the error"
//     warning and run, q8_0 within 2% of DIR's perplexity (measured <= 0.4%), the 4-bit ones within 30% (<= 8.5%).
// An unknown quant_method still exits 4 naming it. The values are checked against numpy in
// tests/oracle/test_quantized_gguf_oracle.py.
// clang-format off
#include <gtest/gtest.h>  // before run_binary.h, which uses ::testing
// clang-format on

// GCC 12 reports a false -Wrestrict inside run_binary.h's string concatenation when it inlines run_lowbit.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#include "e2e/tiny_model.h"
#pragma GCC diagnostic pop

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lowbit::e2e {
namespace {

class QuantizedToGguf : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        tmp_ = make_test_dir("quantized_to_gguf");
        if (!tiny_model_available()) return;
        made_ = true;
        ok_ = make_tiny_model(tmp_ + "src", "--hidden 256 --ff 512 --heads 4 --kv-heads 2 --dtype bf16 --tokenizer "
                                            "--seed 17");
        std::string text;
        for (int i = 0; i < 80; ++i)
            text += "The quick brown fox " + std::to_string(i * 13 % 97) +
                    " jumps over the lazy dog; calibration and evaluation text for the tiny model.\n";
        std::ofstream(tmp_ + "text.txt") << text;
    }
    static void TearDownTestSuite() { remove_test_dir(tmp_); }
    void SetUp() override {
        if (!made_) GTEST_SKIP() << "python3 with numpy and tokenizers is needed to build the tiny model";
        ASSERT_TRUE(ok_) << "make_tiny_llama.py failed";
    }
    static double ppl(const std::string& model) { return tiny_ppl(model, tmp_ + "text.txt", 6); }

    // `lowbit quantize -m src --method <method> [extra]` into tmp_/<tag or method>; returns the directory.
    static std::string quantize_dir(const std::string& method, const std::vector<std::string>& extra = {},
                                    const std::string& tag = "") {
        const std::string out = tmp_ + (tag.empty() ? method : tag);
        std::vector<std::string> args = {"quantize", "-m",   tmp_ + "src",    "-o", out,
                                         "--method", method, "--no-progress", "-t", "2"};
        args.insert(args.end(), extra.begin(), extra.end());
        const RunResult r = run_lowbit(args);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return out;
    }

    // The whole check for one quantized directory; `describe` is the expected "(...)" of the warning.
    static void check_dir(const std::string& dir, const std::string& describe, bool int8_activations = false) {
        const double base = ppl(dir);
        ASSERT_GT(base, 1.0);
        const std::string head = "lowbit: warning: '" + dir + "' is already quantized (" + describe + "); ";
        const double f16_tol = int8_activations ? 5e-3 : 5e-4, f32_tol = int8_activations ? 5e-3 : 1e-6;
        for (const char* type : {"f32", "f16"}) {
            const std::string out = dir + "." + type + ".gguf";
            const RunResult r = run_lowbit({"convert", dir, "-o", out, "--type", type, "--no-progress"});
            ASSERT_EQ(r.exit_code, 0) << r.err;
            EXPECT_NE(r.err.find(head + "the " + type + " output is its dequantized weights, exact"), std::string::npos)
                << r.err;
            const double p = ppl(out);
            EXPECT_LT(std::abs(p / base - 1.0), std::string(type) == "f32" ? f32_tol : f16_tol)
                << type << ": ppl " << p << " vs directory " << base;
        }
        for (const char* method : {"q8_0", "q4_0", "q4_k_m"}) {
            const std::string out = dir + "." + method + ".gguf";
            const RunResult r =
                run_lowbit({"quantize", "-m", dir, "-o", out, "--method", method, "--no-progress", "-t", "2"});
            ASSERT_EQ(r.exit_code, 0) << r.err;
            EXPECT_NE(r.err.find(head + "requantizing compounds the error: the " + method + " output carries"),
                      std::string::npos)
                << r.err;
            EXPECT_NE(r.out.find("wrote " + out), std::string::npos) << r.out;
            const double p = ppl(out);
            EXPECT_LT(std::abs(p / base - 1.0), std::string(method) == "q8_0" ? 0.02 : 0.30)
                << method << ": ppl " << p << " vs directory " << base;
        }
    }

    static inline std::string tmp_;
    static inline bool made_ = false, ok_ = false;
};

TEST_F(QuantizedToGguf, Nf4) {
    check_dir(quantize_dir("nf4"), "bitsandbytes nf4");
}

TEST_F(QuantizedToGguf, Fp4) {
    check_dir(quantize_dir("fp4", {"--no-double-quant"}), "bitsandbytes fp4");
}

TEST_F(QuantizedToGguf, Int8) {
    check_dir(quantize_dir("int8"), "bitsandbytes LLM.int8", /*int8_activations=*/true);
}

TEST_F(QuantizedToGguf, Hqq) {
    check_dir(quantize_dir("hqq"), "hqq int4 g64");
}

TEST_F(QuantizedToGguf, Rtn) {
    check_dir(quantize_dir("rtn", {"--bits", "3", "--group-size", "64"}), "lowbit_rtn int3 g64 asym");
}

TEST_F(QuantizedToGguf, Gptq) {
    check_dir(quantize_dir("gptq", {"--calib", tmp_ + "text.txt", "--nsamples", "4", "--seqlen", "64"}),
              "gptq int4 g128 asym");
}

TEST_F(QuantizedToGguf, Awq) {
    check_dir(quantize_dir("awq", {"--calib", tmp_ + "text.txt", "--nsamples", "4", "--seqlen", "64"}),
              "awq int4 g128");
}

// The unquantized source converts without the warning; it is the baseline the quantized directories are not.
TEST_F(QuantizedToGguf, PlainSourceHasNoWarningAndQuantizationMatters) {
    const RunResult r = run_lowbit({"convert", tmp_ + "src", "-o", tmp_ + "src.f16.gguf", "--no-progress"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.find("already quantized"), std::string::npos) << r.err;
    // A 3-bit directory is far enough from the source that the tolerances above tell them apart.
    const std::string rtn3 = quantize_dir("rtn", {"--bits", "3", "--group-size", "64"});
    const double src = ppl(tmp_ + "src.f16.gguf"), q = ppl(rtn3);
    EXPECT_GT(std::abs(q / src - 1.0), 1e-2) << "rtn3 " << q << " vs source " << src;
}

TEST_F(QuantizedToGguf, UnknownQuantMethodExitsFour) {
    const std::string dir = quantize_dir("nf4", {}, "aqlm");
    auto cfg = nlohmann::json::parse(slurp(dir + "/config.json"));
    cfg["quantization_config"]["quant_method"] = "aqlm";
    std::ofstream(dir + "/config.json") << cfg.dump();
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"convert", dir, "-o", tmp_ + "aqlm.gguf"},
             {"quantize", "-m", dir, "-o", tmp_ + "aqlm.q4.gguf", "--method", "q4_k_m"}}) {
        const RunResult r = run_lowbit(args);
        EXPECT_EQ(r.exit_code, 4) << r.err;
        EXPECT_NE(r.err.find("quant_method 'aqlm' is not supported"), std::string::npos) << r.err;
    }
}

} // namespace
} // namespace lowbit::e2e
