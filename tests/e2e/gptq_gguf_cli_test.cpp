// SPDX-License-Identifier: MIT
// `lowbit quantize --method gptq --format gguf --type T` through the binary: a tiny model (hidden 128: the 256-row
// k-quant tensors fall back to Q5_0/Q8_0 as llama.cpp does; ff 256: down_proj stays on the k-quant grid) quantized
// and run by `lowbit perplexity`, the plain GGUF file's tensor types reproduced, and the option errors.
// clang-format off
#include <gtest/gtest.h>  // before run_binary.h, which uses ::testing
#include "e2e/tiny_model.h"
// clang-format on

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace lowbit::e2e {
namespace {

class GptqGgufCli : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        tmp_ = make_test_dir("gptq_gguf_cli");
        if (!tiny_model_available()) return;
        made_ = true;
        ok_ = make_tiny_model(tmp_ + "f32", "--hidden 128 --ff 256 --tokenizer --seed 9");
        std::string text;
        for (int i = 0; i < 60; ++i)
            text += "Calibration text for GGUF grids; the quick brown fox " + std::to_string(i * 11) +
                    " jumps over the lazy dog while blocks of columns keep their scales.\n";
        std::ofstream(tmp_ + "text.txt") << text;
    }
    static void TearDownTestSuite() { remove_test_dir(tmp_); }
    void SetUp() override {
        if (!made_) GTEST_SKIP() << "python3 with numpy and tokenizers is needed to build the tiny model";
        ASSERT_TRUE(ok_) << "make_tiny_llama.py failed";
    }
    static double ppl(const std::string& model) {
        auto r = run_lowbit(
            {"perplexity", "-m", model, "-f", tmp_ + "text.txt", "-c", "64", "--chunks", "4", "--json", "-t", "2"});
        EXPECT_EQ(r.exit_code, 0) << model << ": " << r.err;
        return r.exit_code == 0 ? nlohmann::json::parse(r.out)["ppl"].get<double>() : -1.0;
    }
    static RunResult quantize(const std::string& out, std::vector<std::string> extra) {
        std::vector<std::string> args = {"quantize",        "-m",         tmp_ + "f32", "-o",       out,
                                         "--method",        "gptq",       "--format",   "gguf",     "--calib",
                                         tmp_ + "text.txt", "--nsamples", "4",          "--seqlen", "64",
                                         "--no-progress",   "-t",         "2"};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_lowbit(args);
    }
    // The report's per-type table (type, tensors, weights, bytes, bpw), without the totals and timing.
    static std::string type_rows(const std::string& report) { return report.substr(0, report.find("total:")); }
    static inline std::string tmp_;
    static inline bool made_ = false, ok_ = false;
};

TEST_F(GptqGgufCli, QuantizeThenPerplexityWithThePlainMix) {
    const double base = ppl(tmp_ + "f32");
    ASSERT_GT(base, 1.0);
    for (const std::string type : {"Q4_K_M", "Q4_0", "Q6_K"}) {
        const std::string out = tmp_ + "gptq_" + type + ".gguf", plain = tmp_ + "plain_" + type + ".gguf";
        auto r = quantize(out, {"--type", type});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.err.find("linears onto GGUF grids"), std::string::npos) << r.err;
        auto p = run_lowbit({"quantize", "-m", tmp_ + "f32", "-o", plain, "--method", type, "--no-progress"});
        ASSERT_EQ(p.exit_code, 0) << p.err;
        EXPECT_EQ(type_rows(r.out), type_rows(p.out)) << "gptq:\n" << r.out << "plain:\n" << p.out;
        const double q = ppl(out);
        EXPECT_GT(q, 0.0);
        EXPECT_LT(std::abs(q / base - 1.0), 0.25) << type << ": ppl " << q << " vs f32 " << base;
    }
}

TEST_F(GptqGgufCli, OptionErrors) {
    const std::string out = tmp_ + "e.gguf";
    auto r = quantize(out, {});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--type"), std::string::npos) << r.err;
    for (const auto& extra : std::vector<std::vector<std::string>>{{"--type", "Q9_K"},
                                                                   {"--type", "F16"},
                                                                   {"--type", "Q4_K_M", "--bits", "4"},
                                                                   {"--type", "Q4_0", "--no-static-groups"}}) {
        r = quantize(out, extra);
        EXPECT_EQ(r.exit_code, 2) << extra[1] << ": " << r.err;
        EXPECT_NE(r.err.find("lowbit: error:"), std::string::npos);
    }
    r = run_lowbit({"quantize", "-m", tmp_ + "f32", "-o", out, "--method", "q4_0", "--type", "Q4_0"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--type applies to gptq"), std::string::npos) << r.err;
    r = quantize(out, {"--type", "Q4_0", "--device", "cuda"}); // refused before any work, with or without CUDA
    EXPECT_EQ(r.exit_code, 4) << r.err;
    EXPECT_NE(r.err.find("runs on the CPU only"), std::string::npos) << r.err;
}

} // namespace
} // namespace lowbit::e2e
