// SPDX-License-Identifier: MIT
// Issue #15 (hardening), through the binary: a NaN weight is refused by every quantization method, naming the tensor
// and the first bad index, and nothing is written (class 3). Each case asserts the exit code and the message.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict" // run_binary.h's string concatenation, see gguf_bad_input_test.cpp
#endif

#include "e2e/harden_util.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <gtest/gtest.h>
#include <map>
#include <string>
#include <vector>

namespace lowbit::e2e {
namespace {

// Class 3: a NaN weight is refused by every method, naming the tensor and the first bad index; nothing written.
class NonFinite : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (!tiny_model_available()) return;
        dir_ = make_test_dir("harden_nan");
        ok_ = make_tiny_model(dir_ + "src", "--hidden 128 --ff 256 --dtype f32 --tokenizer --seed 3");
        if (ok_) poke_f32(dir_ + "src/model.safetensors", "model.layers.1.mlp.down_proj.weight", 5, NAN);
    }
    static void TearDownTestSuite() {
        if (!dir_.empty()) remove_test_dir(dir_);
    }
    void SetUp() override {
        if (!tiny_model_available()) GTEST_SKIP() << "python3 with numpy and tokenizers is needed";
        ASSERT_TRUE(ok_) << "make_tiny_llama.py failed";
    }
    static inline std::string dir_;
    static inline bool ok_ = false;
};

TEST_F(NonFinite, GgufMethodsRefuse) {
    for (const char* method : {"q4_k_m", "q2_k", "q4_0", "q8_0", "q6_k"}) {
        SCOPED_TRACE(method);
        const std::string out = dir_ + method + ".gguf";
        expect_error(run_lowbit({"quantize", "-m", dir_ + "src", "-o", out, "--method", method, "--no-progress"}), 3,
                     "tensor 'blk.1.ffn_down.weight': weight element 5 (row 0) is nan; quantization needs finite");
        EXPECT_FALSE(fs::exists(out));
        EXPECT_TRUE(entries_with(dir_, ".tmp.").empty());
    }
}

// A GGUF input (requantize) takes the streamed path (tiles of rows decoded with the check fused in): the same
// refusal, from f16 and f32 files, and no output or temporary file left behind.
TEST_F(NonFinite, GgufInputRefuses) {
    for (const char* type : {"f16", "f32"}) {
        const std::string in = dir_ + "nan-in-" + type + ".gguf";
        ASSERT_EQ(run_lowbit({"convert", dir_ + "src", "-o", in, "--type", type, "--no-progress"}).exit_code, 0);
        for (const char* method : {"q4_k_m", "q4_0", "q8_0"}) {
            SCOPED_TRACE(std::string(type) + " -> " + method);
            const std::string out = dir_ + "from-gguf-" + method + ".gguf";
            expect_error(run_lowbit({"quantize", "-m", in, "-o", out, "--method", method, "--no-progress", "-t", "2"}),
                         3,
                         "tensor 'blk.1.ffn_down.weight': weight element 5 (row 0) is nan; quantization needs finite");
            EXPECT_FALSE(fs::exists(out));
            EXPECT_TRUE(entries_with(dir_, ".tmp.").empty());
        }
    }
}

TEST_F(NonFinite, HfMethodsRefuse) {
    for (const char* method : {"nf4", "rtn", "int8", "hqq"}) {
        SCOPED_TRACE(method);
        const std::string out = dir_ + method;
        expect_error(
            run_lowbit({"quantize", "-m", dir_ + "src", "-o", out, "--method", method, "--no-progress", "-t", "2"}), 3,
            "'model.layers.1.mlp.down_proj.weight': weight element 5 (row 0) is nan; quantization needs finite");
        EXPECT_FALSE(fs::exists(out)) << "a refused run must not leave an output directory";
        EXPECT_TRUE(entries_with(dir_, ".tmp.").empty());
    }
}

TEST_F(NonFinite, CalibratedMethodsRefuse) {
    for (const char* method : {"gptq", "awq"}) {
        SCOPED_TRACE(method);
        const std::string out = dir_ + method;
        expect_error(run_lowbit({"quantize", "-m", dir_ + "src", "-o", out, "--method", method, "--calib", "random",
                                 "--nsamples", "2", "--seqlen", "16", "--no-progress", "-t", "2", "--device", "cpu"}),
                     3, "tensor 'model.layers.1.mlp.down_proj.weight': weight element 5 (row 0) is nan");
        EXPECT_FALSE(fs::exists(out));
    }
    const std::string out = dir_ + "gptq.gguf";
    expect_error(run_lowbit({"quantize", "-m",         dir_ + "src", "-o",       out,    "--method",
                             "gptq",     "--format",   "gguf",       "--type",   "Q4_0", "--calib",
                             "random",   "--nsamples", "2",          "--seqlen", "16",   "--no-progress",
                             "-t",       "2",          "--device",   "cpu"}),
                 3, "tensor 'model.layers.1.mlp.down_proj.weight': weight element 5 (row 0) is nan");
    EXPECT_FALSE(fs::exists(out));
}

// Class 3, runtime side: a model whose weights hold a NaN (HF folder, and the same weights as an f32 GGUF) does not
// "generate" an empty text with exit 0: run names the non-finite logits and the first non-finite weight (exit 3).
TEST_F(NonFinite, RunSaysWhyNothingIsGenerated) {
    const RunResult hf = run_lowbit({"run", "-m", dir_ + "src", "-p", "a b", "-n", "4", "--temp", "0", "-t", "2"});
    expect_error(hf, 3, "the model's logits are not finite after the prompt (");
    EXPECT_NE(hf.err.find("so no token can be sampled and nothing is generated: tensor "
                          "'model.layers.1.mlp.down_proj.weight' holds nan at row 0, column 5"),
              std::string::npos)
        << hf.err;

    const std::string gguf = dir_ + "nan-f32.gguf";
    const RunResult c = run_lowbit({"convert", dir_ + "src", "-o", gguf, "--type", "f32"});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    const RunResult g = run_lowbit({"run", "-m", gguf, "-p", "a b", "-n", "4", "--temp", "0", "-t", "2"});
    expect_error(g, 3, "tensor 'blk.1.ffn_down.weight' holds nan at row 0, column 5");
    EXPECT_EQ(g.err.find("stop:"), std::string::npos) << "no generation summary after the error: " << g.err;
}

} // namespace
} // namespace lowbit::e2e
