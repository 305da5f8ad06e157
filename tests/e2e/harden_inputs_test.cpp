// SPDX-License-Identifier: MIT
// Issue #15 (hardening), through the binary: empty and inconsistent inputs (a vocabulary-only GGUF, tokenizer ids
// beyond the embedding or the entry count: class 4/5), options that do not apply, one exit code for a missing input.
// Each case asserts the exit code and the message.
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

// Class 4: a vocabulary-only GGUF has nothing to quantize.
TEST(Hardening, VocabOnlyGgufIsNotQuantized) {
    const char* shared = std::getenv("LOWBIT_SHARED");
    if (!shared) GTEST_SKIP() << "LOWBIT_SHARED is unset";
    const std::string vocab = std::string(shared) + "/data/vocab/ggml-vocab-llama-spm.gguf";
    ASSERT_TRUE(fs::exists(vocab)) << vocab;
    const std::string dir = make_test_dir("harden_vocab");
    for (const char* method : {"q4_0", "nf4"}) {
        SCOPED_TRACE(method);
        const std::string out = dir + method + ".out";
        expect_error(run_lowbit({"quantize", "-m", vocab, "-o", out, "--method", method, "--no-progress"}), 3,
                     "has no tensors (a vocabulary-only GGUF?): there are no weights to quantize");
        EXPECT_FALSE(fs::exists(out));
    }
    remove_test_dir(dir);
}

// Class 4 (tokenizer ids vs embedding rows) and class 5 (tokenizer ids vs entry count).
class TokenizerIds : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!tiny_model_available()) GTEST_SKIP() << "python3 with numpy and tokenizers is needed";
        dir_ = make_test_dir("harden_tok");
        ASSERT_TRUE(make_tiny_model(dir_ + "m", "--tokenizer --seed 5"));
    }
    void TearDown() override {
        if (!dir_.empty()) remove_test_dir(dir_);
    }
    void add_token(int64_t id) {
        json t = json::parse(slurp(dir_ + "m/tokenizer.json"));
        if (!t.contains("added_tokens") || !t["added_tokens"].is_array()) t["added_tokens"] = json::array();
        t["added_tokens"].push_back({{"id", id},
                                     {"content", "<|extra|>"},
                                     {"single_word", false},
                                     {"lstrip", false},
                                     {"rstrip", false},
                                     {"normalized", false},
                                     {"special", true}});
        write_json(dir_ + "m/tokenizer.json", t);
    }
    std::string dir_;
};

TEST_F(TokenizerIds, IdBeyondEmbeddingRowsIsCaughtAtLoad) {
    add_token(600); // the tiny model has 512 embedding rows
    expect_error(run_lowbit({"run", "-m", dir_ + "m", "-p", "hello", "-n", "1", "--temp", "0"}), 3,
                 "the tokenizer has 601 tokens (ids 0..600) but the model's token embedding has 512 rows");
}

TEST_F(TokenizerIds, HugeIdIsRefusedQuickly) {
    add_token(16777216);
    const auto t0 = std::chrono::steady_clock::now();
    expect_error(run_lowbit({"tokenize", "-m", dir_ + "m", "-p", "hello"}), 3,
                 "tokenizer.json: token id 16777216 ('<|extra|>') is beyond the");
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
}

// Class 5: option misuse and one exit code (1, kIo) for a missing input in every command.
TEST(Hardening, GgufMethodsRefuseHfOnlyOptions) {
    const std::string model = std::string(LOWBIT_SOURCE_DIR) + "/models/lowbit-ref-30m";
    const std::string out = ::testing::TempDir() + "/lowbit_harden_opts_" + std::to_string(::getpid()) + ".gguf";
    const std::vector<std::vector<std::string>> cases = {
        {"--bits", "3"}, {"--group-size", "64"}, {"--sym"}, {"--asym"}, {"--block-size", "64"}, {"--no-double-quant"}};
    for (const auto& extra : cases) {
        SCOPED_TRACE(extra[0]);
        std::vector<std::string> args = {"quantize", "-m", model, "-o", out, "--method", "q4_0"};
        args.insert(args.end(), extra.begin(), extra.end());
        expect_error(run_lowbit(args), 2, extra[0] + " does not apply to GGUF method 'q4_0'");
        EXPECT_FALSE(fs::exists(out));
    }
}

TEST(Hardening, MissingInputIsExitOneEverywhere) {
    const std::string missing = "/nonexistent/lowbit-model";
    const std::string out = ::testing::TempDir() + "/lowbit_harden_missing_" + std::to_string(::getpid());
    const std::vector<std::vector<std::string>> cases = {
        {"inspect", missing},
        {"run", "-m", missing, "-p", "a", "-n", "1"},
        {"tokenize", "-m", missing, "-p", "a"},
        {"convert", missing, "-o", out + ".gguf"},
        {"quantize", "-m", missing, "-o", out + ".gguf", "--method", "q4_0"},
        {"quantize", "-m", missing, "-o", out, "--method", "nf4"},
    };
    for (const auto& args : cases) {
        SCOPED_TRACE(args[0]);
        expect_error(run_lowbit(args), 1, missing);
    }
}

TEST(Hardening, ImatrixZeroChunksSaysSo) {
    const std::string model = std::string(LOWBIT_SOURCE_DIR) + "/models/lowbit-ref-30m";
    const std::string text = ::testing::TempDir() + "/lowbit_harden_imatrix_" + std::to_string(::getpid()) + ".txt";
    std::ofstream(text) << "some text";
    expect_error(run_lowbit({"imatrix", "-m", model, "-f", text, "-o", text + ".gguf", "--chunks", "0"}), 2,
                 "--chunks must be at least 1 (or omitted for all the text has), got 0");
    std::remove(text.c_str());
}

// Class 5: one UTF-8 rule for every text input — prompts and -f files of run/tokenize, the text of perplexity and
// imatrix, and the --calib file of gptq/awq (which used to accept it) — with one message and exit 3.
TEST(Hardening, InvalidUtf8TextIsRefusedByEveryCommand) {
    const std::string model = std::string(LOWBIT_SOURCE_DIR) + "/models/lowbit-ref-30m";
    const std::string dir = make_test_dir("harden_utf8");
    const std::string text = dir + "bad.txt";
    std::ofstream(text, std::ios::binary) << "abc\xFF"
                                             "def and more text";
    const std::string rest = " is not valid UTF-8: byte 0xFF at offset 3 (convert the text to UTF-8)";
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"run", "-m", model, "-f", text, "-n", "1"}, "prompt file " + text + rest},
        {{"run", "-m", model, "-p", "abc\xFF", "-n", "1"}, "prompt" + rest},
        {{"tokenize", "-m", model, "-f", text}, text + rest},
        {{"perplexity", "-m", model, "-f", text}, "text file '" + text + "'" + rest},
        {{"imatrix", "-m", model, "-f", text, "-o", dir + "imatrix.gguf"}, "text file '" + text + "'" + rest},
        {{"quantize", "-m", model, "-o", dir + "gptq", "--method", "gptq", "--calib", text, "--nsamples", "1",
          "--seqlen", "4", "--no-progress", "--device", "cpu"},
         "calibration file '" + text + "'" + rest},
        {{"quantize", "-m", model, "-o", dir + "awq", "--method", "awq", "--calib", text, "--nsamples", "1", "--seqlen",
          "4", "--no-progress", "--device", "cpu"},
         "calibration file '" + text + "'" + rest},
    };
    for (const auto& [args, message] : cases) {
        SCOPED_TRACE(args[0] + " " + args[3]);
        expect_error(run_lowbit(args), 3, message);
    }
    EXPECT_FALSE(fs::exists(dir + "gptq"));
    EXPECT_FALSE(fs::exists(dir + "awq"));
    EXPECT_FALSE(fs::exists(dir + "imatrix.gguf"));
    remove_test_dir(dir);
}

} // namespace
} // namespace lowbit::e2e
