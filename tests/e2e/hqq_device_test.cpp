// SPDX-License-Identifier: MIT
// e2e: `lowbit quantize --method hqq --device auto|cpu|cuda` on a tiny bf16 llama. The log names the device
// used; --device cuda either writes the same bytes as --device cpu (CUDA build with a GPU), or fails clearly:
// exit 4 on a build without CUDA, exit 1 (device error) on a CUDA build without a usable GPU — never a silent
// CPU fallback. Bad --device values and --device on other methods exit 2.
#include <gtest/gtest.h>

// GCC 12 reports a false -Wrestrict inside run_binary.h's string concatenation when it inlines run_lowbit.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#include "e2e/run_binary.h"
#include "e2e/tiny_model.h"
#pragma GCC diagnostic pop

namespace lowbit::e2e {
namespace {

class HqqDevice : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (!tiny_model_available()) return;
        dir_ = make_test_dir("hqq_device");
        ok_ = make_tiny_model(dir_ + "src", "--hidden 128 --ff 256 --dtype bf16 --tokenizer --seed 3");
    }
    static void TearDownTestSuite() {
        if (!dir_.empty()) remove_test_dir(dir_);
    }
    void SetUp() override {
        if (dir_.empty()) GTEST_SKIP() << "python3 with numpy and tokenizers is needed to build the tiny model";
        ASSERT_TRUE(ok_) << "make_tiny_llama.py failed";
    }
    static RunResult quantize(const std::string& out, const std::vector<std::string>& extra) {
        std::vector<std::string> args = {"quantize", "-m",  dir_ + "src",    "-o", dir_ + out,
                                         "--method", "hqq", "--no-progress", "-t", "2"};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_lowbit(args);
    }
    static inline std::string dir_;
    static inline bool ok_ = false;
};

TEST_F(HqqDevice, CpuAndAutoLogTheDevice) {
    const RunResult cpu = quantize("cpu", {"--device", "cpu"});
    ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
    EXPECT_NE(cpu.err.find("hqq solver on cpu (--device cpu)"), std::string::npos) << cpu.err;
    const RunResult dflt = quantize("auto", {}); // --device auto is the default
    ASSERT_EQ(dflt.exit_code, 0) << dflt.err;
    const bool on_cuda = dflt.err.find("hqq solver on cuda: ") != std::string::npos;
    EXPECT_TRUE(on_cuda || dflt.err.find("hqq solver on cpu (") != std::string::npos) << dflt.err;
    // Either device writes the same model (the CUDA solver reproduces the CPU solver's numbers).
    EXPECT_EQ(slurp(dir_ + "cpu/model.safetensors"), slurp(dir_ + "auto/model.safetensors"));
    EXPECT_EQ(slurp(dir_ + "cpu/config.json"), slurp(dir_ + "auto/config.json"));
}

TEST_F(HqqDevice, CudaRunsOrFailsClearly) {
    const RunResult r = quantize("cuda", {"--device", "cuda", "--bits", "3"});
    if (r.exit_code == 0) {
        EXPECT_NE(r.err.find("hqq solver on cuda: "), std::string::npos) << r.err;
        const RunResult cpu = quantize("cpu3", {"--device", "cpu", "--bits", "3"});
        ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
        EXPECT_EQ(slurp(dir_ + "cpu3/model.safetensors"), slurp(dir_ + "cuda/model.safetensors"));
    } else {
        expect_clear_cuda_failure(r, dir_ + "cuda");
    }
}

TEST_F(HqqDevice, BadValuesAreUsageErrors) {
    RunResult r = quantize("bad", {"--device", "gpu"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--device must be auto, cpu or cuda, got 'gpu'"), std::string::npos) << r.err;
    r = run_lowbit({"quantize", "-m", dir_ + "src", "-o", dir_ + "rtn", "--method", "rtn", "--device", "cuda"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--device applies to hqq"), std::string::npos) << r.err;
}

} // namespace
} // namespace lowbit::e2e
