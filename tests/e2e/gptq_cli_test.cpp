// SPDX-License-Identifier: MIT
// `lowbit quantize --method gptq` through the binary: calibrate on a text, write the HF GPTQ layout (v1 and
// gptq_v2, with and without act-order), load it back for `lowbit perplexity`, and the calibration errors.
// clang-format off
#include <gtest/gtest.h>  // before run_binary.h, which uses ::testing
#include "e2e/tiny_model.h"
// clang-format on

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>

namespace lowbit::e2e {
namespace {

class GptqCli : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        tmp_ = make_test_dir("gptq_cli");
        if (!tiny_model_available()) return;
        made_ = true;
        ok_ = make_tiny_model(tmp_ + "f32", "--hidden 128 --ff 256 --tokenizer --seed 8");
        std::string text;
        for (int i = 0; i < 60; ++i)
            text += "Calibration text keeps the Hessian well conditioned; the quick brown fox " +
                    std::to_string(i * 7) +
                    " jumps over the lazy dog, and every group of columns sees real activations.\n";
        std::ofstream(tmp_ + "text.txt") << text;
    }
    static void TearDownTestSuite() { remove_test_dir(tmp_); }
    void SetUp() override {
        if (!made_) GTEST_SKIP() << "python3 with numpy and tokenizers is needed to build the tiny model";
        ASSERT_TRUE(ok_) << "make_tiny_llama.py failed";
    }
    static double ppl(const std::string& dir) { return tiny_ppl(dir, tmp_ + "text.txt", 4); }
    static inline std::string tmp_;
    static inline bool made_ = false, ok_ = false;
};

TEST_F(GptqCli, QuantizeThenPerplexityV1AndV2) {
    const double base = ppl(tmp_ + "f32");
    ASSERT_GT(base, 1.0);
    const std::vector<std::vector<std::string>> variants = {{}, {"--desc-act", "--gptq-v2"}, {"--asym"}};
    int i = 0;
    for (const auto& extra : variants) {
        const std::string out = tmp_ + "gptq" + std::to_string(i++);
        std::vector<std::string> args = {
            "quantize",        "-m",         tmp_ + "f32", "-o",       out,  "--method",      "gptq", "--calib",
            tmp_ + "text.txt", "--nsamples", "4",          "--seqlen", "64", "--no-progress", "-t",   "2"};
        args.insert(args.end(), extra.begin(), extra.end());
        auto r = run_lowbit(args);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.out.find("gptq"), std::string::npos) << r.out;
        std::ifstream cfg(out + "/config.json");
        const auto j = nlohmann::json::parse(cfg);
        EXPECT_EQ(j["quantization_config"]["quant_method"], "gptq");
        const double q = ppl(out);
        EXPECT_GT(q, 0.0);
        EXPECT_LT(std::abs(q / base - 1.0), 0.25) << "ppl " << q << " vs f32 " << base;
    }
}

TEST_F(GptqCli, CalibrationErrors) {
    auto r = run_lowbit({"quantize", "-m", tmp_ + "f32", "-o", tmp_ + "e1", "--method", "gptq"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("lowbit: error:"), std::string::npos);
    EXPECT_NE(r.err.find("calib"), std::string::npos) << r.err;
    r = run_lowbit({"quantize", "-m", tmp_ + "f32", "-o", tmp_ + "e2", "--method", "gptq", "--calib", tmp_ + "text.txt",
                    "--nsamples", "100000", "--seqlen", "64"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("tokens"), std::string::npos) << r.err;
    r = run_lowbit(
        {"quantize", "-m", tmp_ + "f32", "-o", tmp_ + "e3", "--method", "gptq", "--calib", tmp_ + "missing.txt"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.signal, 0);
    r = run_lowbit(
        {"quantize", "-m", tmp_ + "f32", "-o", tmp_ + "e4", "--method", "nf4", "--calib", tmp_ + "text.txt"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
}

} // namespace
} // namespace lowbit::e2e
