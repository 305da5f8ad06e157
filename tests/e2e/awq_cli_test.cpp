// SPDX-License-Identifier: MIT
// `lowbit quantize --method awq` through the binary: calibrate on a text, write the AutoAWQ GEMM layout (4-bit) or
// the GPTQ layout (3-bit), load both back for `lowbit perplexity`, and the calibration / option errors.
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

class AwqCli : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        tmp_ = make_test_dir("awq_cli");
        if (!tiny_model_available()) return;
        made_ = true;
        ok_ = make_tiny_model(tmp_ + "f32", "--hidden 128 --ff 256 --tokenizer --seed 8");
        std::string text;
        for (int i = 0; i < 60; ++i)
            text += "Activation-aware scaling protects the salient channels; the quick brown fox " +
                    std::to_string(i * 7) + " jumps over the lazy dog, and every group sees real activations.\n";
        std::ofstream(tmp_ + "text.txt") << text;
    }
    static void TearDownTestSuite() { remove_test_dir(tmp_); }
    void SetUp() override {
        if (!made_) GTEST_SKIP() << "python3 with numpy and tokenizers is needed to build the tiny model";
        ASSERT_TRUE(ok_) << "make_tiny_llama.py failed";
    }
    static double ppl(const std::string& dir) { return tiny_ppl(dir, tmp_ + "text.txt", 4); }
    static RunResult quantize(const std::string& out, const std::vector<std::string>& extra) {
        std::vector<std::string> args = {
            "quantize",        "-m",         tmp_ + "f32", "-o",       out,  "--method",      "awq", "--calib",
            tmp_ + "text.txt", "--nsamples", "4",          "--seqlen", "64", "--no-progress", "-t",  "2"};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_lowbit(args);
    }
    static nlohmann::json quantization_config(const std::string& dir) {
        std::ifstream cfg(dir + "/config.json");
        return nlohmann::json::parse(cfg)["quantization_config"];
    }
    static inline std::string tmp_;
    static inline bool made_ = false, ok_ = false;
};

TEST_F(AwqCli, Int4GemmThenPerplexity) {
    const double base = ppl(tmp_ + "f32");
    ASSERT_GT(base, 1.0);
    const std::string out = tmp_ + "awq4";
    auto r = quantize(out, {});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("awq_int4"), std::string::npos) << r.out;
    const auto qc = quantization_config(out);
    EXPECT_EQ(qc["quant_method"], "awq");
    EXPECT_EQ(qc["bits"], 4);
    EXPECT_EQ(qc["group_size"], 128);
    EXPECT_EQ(qc["zero_point"], true);
    const double q = ppl(out);
    EXPECT_GT(q, 0.0);
    EXPECT_LT(std::abs(q / base - 1.0), 0.25) << "ppl " << q << " vs f32 " << base;
}

TEST_F(AwqCli, Int3GptqLayoutThenPerplexity) {
    const double base = ppl(tmp_ + "f32");
    const std::string out = tmp_ + "awq3";
    auto r = quantize(out, {"--bits", "3"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto qc = quantization_config(out);
    EXPECT_EQ(qc["quant_method"], "gptq");
    EXPECT_EQ(qc["bits"], 3);
    EXPECT_EQ(qc["checkpoint_format"], "gptq_v2");
    const double q = ppl(out);
    EXPECT_GT(q, 0.0);
    EXPECT_LT(std::abs(q / base - 1.0), 0.6) << "ppl " << q << " vs f32 " << base;
}

TEST_F(AwqCli, Errors) {
    auto r = run_lowbit({"quantize", "-m", tmp_ + "f32", "-o", tmp_ + "e1", "--method", "awq"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("calib"), std::string::npos) << r.err;
    r = run_lowbit({"quantize", "-m", tmp_ + "f32", "-o", tmp_ + "e2", "--method", "awq", "--calib", tmp_ + "text.txt",
                    "--nsamples", "100000", "--seqlen", "64"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("tokens"), std::string::npos) << r.err;
    r = quantize(tmp_ + "e3", {"--bits", "5"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("bits"), std::string::npos) << r.err;
    r = quantize(tmp_ + "e4", {"--group-size", "96"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("group size"), std::string::npos) << r.err;
    EXPECT_EQ(r.signal, 0);
}

TEST_F(AwqCli, DeviceCudaRunsOrFailsClearly) {
    const RunResult cpu = quantize(tmp_ + "dev_cpu", {"--device", "cpu"});
    ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
    EXPECT_NE(cpu.err.find("awq: searching on the CPU"), std::string::npos) << cpu.err;
    const RunResult r = quantize(tmp_ + "dev_cuda", {"--device", "cuda"});
    if (r.exit_code == 0) { // a CUDA build with a GPU: the GPU job ran and its model is as good
        EXPECT_NE(r.err.find("awq: searching on the GPU (cuda)"), std::string::npos) << r.err;
        const double p_cpu = ppl(tmp_ + "dev_cpu"), p_gpu = ppl(tmp_ + "dev_cuda");
        EXPECT_LT(std::abs(p_gpu / p_cpu - 1.0), 0.02) << "ppl gpu " << p_gpu << " cpu " << p_cpu;
    } else {
        expect_clear_cuda_failure(r, tmp_ + "dev_cuda");
    }
    const RunResult bad = quantize(tmp_ + "dev_bad", {"--device", "gpu"});
    EXPECT_EQ(bad.exit_code, 2) << bad.err;
    EXPECT_NE(bad.err.find("--device must be auto, cpu or cuda, got 'gpu'"), std::string::npos) << bad.err;
    EXPECT_EQ(bad.signal, 0);
}

} // namespace
} // namespace lowbit::e2e
