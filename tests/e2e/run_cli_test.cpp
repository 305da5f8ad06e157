// SPDX-License-Identifier: MIT
// `lowbit run` end to end on a seeded synthetic model with a tokenizer (tests/fixtures/make_tiny_llama.py):
// -n 0 prints timings only, greedy and seeded runs repeat exactly, -f equals -p, and every bad input
// (prompt longer than the context, non-UTF-8 prompt, unknown flag, missing model, bad sampler value) gives
// its documented exit code and message without a crash.
// GCC 12 at -O3 reports a false -Wrestrict inside std::string operator+ as inlined in run_binary.h (GCC PR105329).
#pragma GCC diagnostic ignored "-Wrestrict"
// clang-format off
#include <gtest/gtest.h>  // before run_binary.h, which uses ::testing
#include "e2e/run_binary.h"
// clang-format on

#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

namespace lowbit::e2e {
namespace {

// Builds the tiny model once per process, in a directory of its own (ctest runs each test as a process, maybe in
// parallel); skips when python3 lacks numpy/tokenizers (CI has them).
class RunCli : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = ::testing::TempDir() + "/lowbit_run_e2e_model_" + std::to_string(::getpid());
        if (std::system("python3 -c 'import numpy, tokenizers' >/dev/null 2>&1") != 0) return;
        const std::string cmd = "python3 " +
                                shell_quote(std::string(LOWBIT_SOURCE_DIR) + "/tests/fixtures/make_tiny_llama.py") +
                                " --out " + shell_quote(dir_) + " --tokenizer --seed 0 >/dev/null";
        ok_ = std::system(cmd.c_str()) == 0;
        made_ = true;
    }
    static void TearDownTestSuite() {
        if (made_) std::system(("rm -rf " + shell_quote(dir_)).c_str());
    }
    void SetUp() override {
        if (!made_) GTEST_SKIP() << "python3 with numpy and tokenizers is needed to build the tiny model";
        ASSERT_TRUE(ok_) << "make_tiny_llama.py failed";
    }
    static inline std::string dir_;
    static inline bool made_ = false, ok_ = false;
};

TEST_F(RunCli, PromptOnlyPrintsTimings) {
    const auto r = run_lowbit({"run", "-m", dir_, "-p", "Hello world", "-n", "0", "-t", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "Hello world\n");
    EXPECT_NE(r.err.find("prompt eval time ="), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("tokens per second"), std::string::npos);
    EXPECT_NE(r.err.find("stop: prompt only"), std::string::npos);
    EXPECT_NE(r.err.find("seed: "), std::string::npos); // random seed printed
}

TEST_F(RunCli, GreedyIsDeterministicAndSeedsRepeat) {
    const std::vector<std::string> greedy = {"run",    "-m", dir_, "-p", "The quick brown fox", "-n", "16",
                                             "--temp", "0",  "-t", "1"};
    auto a = run_lowbit(greedy);
    auto g2 = greedy;
    g2.insert(g2.end(), {"--seed", "123"}); // the seed does not matter when greedy
    auto b = run_lowbit(g2);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(a.out, b.out);
    EXPECT_GT(a.out.size(), std::string("The quick brown fox\n").size());
    EXPECT_EQ(a.out.rfind("The quick brown fox", 0), 0u);
    EXPECT_NE(a.err.find("16 tokens generated"), std::string::npos) << a.err;

    const std::vector<std::string> sampled = {"run", "-m",      dir_,  "-p",      "Hello", "-n",
                                              "24",  "--temp",  "1.0", "--seed",  "7",     "--top-k",
                                              "0",   "--top-p", "1",   "--min-p", "0"};
    auto s1 = run_lowbit(sampled), s2 = run_lowbit(sampled);
    ASSERT_EQ(s1.exit_code, 0) << s1.err;
    EXPECT_EQ(s1.out, s2.out);
    EXPECT_NE(s1.err.find("seed: 7"), std::string::npos);
}

TEST_F(RunCli, PromptFromFileEqualsPromptFlag) {
    const std::string path = ::testing::TempDir() + "/lowbit_run_prompt.txt";
    std::ofstream(path) << "Hello world\n"; // the final newline is dropped, as llama.cpp does
    auto f = run_lowbit({"run", "-m", dir_, "-f", path, "-n", "8", "--temp", "0", "--no-display-prompt"});
    auto p = run_lowbit({"run", "-m", dir_, "-p", "Hello world", "-n", "8", "--temp", "0", "--no-display-prompt"});
    ASSERT_EQ(f.exit_code, 0) << f.err;
    EXPECT_EQ(f.out, p.out);
}

TEST_F(RunCli, PromptLongerThanContextIsUsageError) {
    std::string long_prompt;
    for (int i = 0; i < 20; ++i) long_prompt += "The quick brown fox jumps over the lazy dog. ";
    const auto r = run_lowbit({"run", "-m", dir_, "-p", long_prompt, "-c", "16", "-n", "4"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("tokens but the context holds only 16"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()); // nothing printed before the check
}

TEST_F(RunCli, NonUtf8PromptIsBadInput) {
    const auto r = run_lowbit({"run", "-m", dir_, "-p", "abc\xff\xfe", "-n", "4"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("not valid UTF-8: byte 0xFF at offset 3"), std::string::npos) << r.err;
}

TEST_F(RunCli, BadFlagsAndMissingModel) {
    auto r = run_lowbit({"run", "-m", dir_, "-p", "x", "--no-such-flag"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("lowbit: error:"), std::string::npos);
    r = run_lowbit({"run", "-m", dir_});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("-p PROMPT or -f FILE"), std::string::npos) << r.err;
    r = run_lowbit({"run", "-m", dir_, "-p", "x", "--top-p", "2"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--top-p"), std::string::npos) << r.err;
    r = run_lowbit({"run", "-m", dir_, "-p", "x", "--top-k", "-5"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--top-k must be >= 0"), std::string::npos) << r.err;
    r = run_lowbit({"run", "-m", dir_, "-p", "x", "--cache-type", "q4_0"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--cache-type 'q4_0'"), std::string::npos) << r.err;
    r = run_lowbit({"run", "-m", dir_, "-p", "x", "-c", "1099511627776", "-n", "1"}); // 2^40 positions
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.signal, 0);
    EXPECT_NE(r.err.find("KV cache needs"), std::string::npos) << r.err;
    r = run_lowbit({"run", "-m", dir_, "-p", "x", "-c", "4611686018427387904", "-n", "1"}); // 2^62: overflows
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.signal, 0);
    EXPECT_NE(r.err.find("KV cache"), std::string::npos) << r.err;
    r = run_lowbit({"run", "-m", dir_ + "/does-not-exist", "-p", "x"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.signal, 0);
    EXPECT_NE(r.err.find("does-not-exist"), std::string::npos) << r.err;
}

} // namespace
} // namespace lowbit::e2e
