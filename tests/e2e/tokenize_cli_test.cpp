// SPDX-License-Identifier: MIT
// `lowbit tokenize` end to end on llama.cpp's vocabulary GGUFs: known GPT-2 and Llama-2 ids, BOS and
// special-token flags, -f equals -p, and every bad input with its exit code and message.
// GCC 12 at -O3 reports a false -Wrestrict (GCC bug 105651) inside run_binary.h's string concatenation once
// inlined here; the pragma must precede the includes to cover the libstdc++ location it points at.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include "core/test_support.h"
#include "e2e/run_binary.h"

#include <fstream>
#include <gtest/gtest.h>
#include <string>

namespace lowbit::e2e {
namespace {

std::string write_temp(const std::string& name, const std::string& bytes) {
    const std::string path = ::testing::TempDir() + "/lowbit_tokenize_" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
}

TEST(TokenizeCli, Gpt2KnownIds) {
    LOWBIT_REQUIRE_SHARED(model, "data/vocab/ggml-vocab-gpt-2.gguf");
    auto r = run_lowbit({"tokenize", "-m", model, "-p", "Hello world", "--ids"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "15496 995\n"); // GPT-2's ids for "Hello" and " world"
    r = run_lowbit({"tokenize", "-m", model, "-p", "Hello world"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, " 15496 -> 'Hello'\n   995 -> ' world'\n");
}

TEST(TokenizeCli, SpmBosAndSpecialTokens) {
    LOWBIT_REQUIRE_SHARED(model, "data/vocab/ggml-vocab-llama-spm.gguf");
    auto r = run_lowbit({"tokenize", "-m", model, "-p", "Hello world", "--ids"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "1 15043 3186\n"); // <s> ▁Hello ▁world
    r = run_lowbit({"tokenize", "-m", model, "-p", "Hello world", "--ids", "--no-bos"});
    EXPECT_EQ(r.out, "15043 3186\n");
    r = run_lowbit({"tokenize", "-m", model, "-p", "<s>", "--ids", "--no-bos"});
    EXPECT_EQ(r.out, "1\n");
    r = run_lowbit({"tokenize", "-m", model, "-p", "<s>", "--ids", "--no-bos", "--no-parse-special"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out, "1\n");
    EXPECT_EQ(r.out.find("1 "), std::string::npos) << r.out;
}

TEST(TokenizeCli, FileEqualsPrompt) {
    LOWBIT_REQUIRE_SHARED(model, "data/vocab/ggml-vocab-falcon.gguf");
    const std::string text = "Tokenize me: 12345 \xc3\xa9t\xc3\xa9 \xf0\x9f\x9a\x80\n\n  end";
    const auto a = run_lowbit({"tokenize", "-m", model, "-p", text, "--ids"});
    const auto b = run_lowbit({"tokenize", "-m", model, "-f", write_temp("prompt.txt", text), "--ids"});
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(a.out, b.out);
    EXPECT_GT(a.out.size(), 10u);
}

TEST(TokenizeCli, BadInputs) {
    LOWBIT_REQUIRE_SHARED(model, "data/vocab/ggml-vocab-gpt-2.gguf");
    auto r = run_lowbit({"tokenize", "-m", "/no/such/model.gguf", "-p", "x"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("/no/such/model.gguf"), std::string::npos) << r.err;

    r = run_lowbit({"tokenize", "-m", model + ".inp", "-p", "x"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("not a GGUF file"), std::string::npos) << r.err;

    const std::string bytes = slurp(model);
    r = run_lowbit({"tokenize", "-m", write_temp("truncated.gguf", bytes.substr(0, bytes.size() / 2)), "-p", "x"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_EQ(r.signal, 0);

    r = run_lowbit({"tokenize", "-m", model, "-f", write_temp("latin1.txt", "caf\xe9"), "--ids"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("not valid UTF-8: byte 0xE9 at offset 3"), std::string::npos) << r.err;

    r = run_lowbit({"tokenize", "-m", model, "-f", write_temp("empty.txt", "")});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("empty"), std::string::npos) << r.err;

    r = run_lowbit({"tokenize", "-m", model, "-f", "/no/such/prompt.txt"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("/no/such/prompt.txt"), std::string::npos) << r.err;

    r = run_lowbit({"tokenize", "-m", model});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("-p TEXT or -f FILE"), std::string::npos) << r.err;
    r = run_lowbit({"tokenize", "-m", model, "-p", "a", "-f", "b"});
    EXPECT_EQ(r.exit_code, 2);
}

TEST(TokenizeCli, HfFolderErrors) {
    const std::string dir = ::testing::TempDir() + "/lowbit_tokenize_hf";
    ASSERT_EQ(std::system(("rm -rf " + shell_quote(dir) + " && mkdir -p " + shell_quote(dir)).c_str()), 0);
    auto r = run_lowbit({"tokenize", "-m", dir, "-p", "x"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("no tokenizer.json"), std::string::npos) << r.err;
    std::ofstream(dir + "/tokenizer.json") << "{\"model\": {\"type\": \"BPE\", \"vocab\": ";
    r = run_lowbit({"tokenize", "-m", dir, "-p", "x"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("tokenizer.json"), std::string::npos) << r.err;
}

} // namespace
} // namespace lowbit::e2e
