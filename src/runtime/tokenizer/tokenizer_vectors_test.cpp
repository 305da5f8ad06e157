// SPDX-License-Identifier: MIT
// llama.cpp's tokenizer test vectors (test-tokenizer-0): every input of ggml-vocab-NAME.gguf.inp must give the
// ids of the matching .out line, tokenized with add_special = false and parse_special = false.
#include "core/test_support.h"
#include "runtime/tokenizer/load.h"
#include "runtime/tokenizer/unicode.h"

#include <fstream>
#include <gtest/gtest.h>
#include <random>
#include <sstream>

namespace lowbit::tokenizer {
namespace {

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The .inp file is text + "\n__ggml_vocab_test__\n" per input, as test-tokenizer-0 splits it.
std::vector<std::string> split_inputs(std::string all) {
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> inputs;
    for (size_t pos; (pos = all.find(sep)) != std::string::npos;) {
        inputs.push_back(all.substr(0, pos));
        all.erase(0, pos + sep.size());
    }
    return inputs;
}

class VocabVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabVectors, AllInputsMatch) {
    const std::string name = std::string("data/vocab/ggml-vocab-") + GetParam() + ".gguf";
    LOWBIT_REQUIRE_SHARED(path, name);
    auto tok = load_tokenizer(path);
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    const std::vector<std::string> inputs = split_inputs(read_all(path + ".inp"));
    std::istringstream outs(read_all(path + ".out"));
    std::string line;
    size_t i = 0, pass = 0;
    for (; std::getline(outs, line); ++i) {
        ASSERT_LT(i, inputs.size()) << "more .out lines than inputs";
        std::vector<int32_t> expected;
        std::istringstream ls(line);
        for (int32_t id; ls >> id;) expected.push_back(id);
        const std::vector<int32_t> got = tok->encode(inputs[i], false, false);
        EXPECT_EQ(got, expected) << "input " << i << ": '" << inputs[i] << "'";
        pass += got == expected;
    }
    EXPECT_EQ(i, inputs.size());
    EXPECT_GT(i, 40u);
    std::printf("[ vectors  ] %s: %zu/%zu inputs match\n", GetParam(), pass, i);
}

// Random text from a mix of scripts, whitespace, digits and emoji: decode(encode(s)) gives back s (byte-level
// BPE is lossless; these SentencePiece vocabularies have all 256 byte tokens), and no id is out of range.
// \v and \f are left out: falcon's vocabulary has no token for byte 0x0B, so it drops it, as llama.cpp does.
TEST_P(VocabVectors, RandomTextRoundTrips) {
    const std::string name = std::string("data/vocab/ggml-vocab-") + GetParam() + ".gguf";
    LOWBIT_REQUIRE_SHARED(path, name);
    auto tok = load_tokenizer(path);
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    const uint32_t pools[][2] = {{0x20, 0x7E},       {0x09, 0x0A},     {0x0D, 0x0D},     {0xA0, 0x17F},
                                 {0x391, 0x3C9},     {0x400, 0x44F},   {0x600, 0x6FF},   {0x900, 0x97F},
                                 {0x3040, 0x30FF},   {0x4E00, 0x4FFF}, {0xAC00, 0xAD00}, {0x2000, 0x206F},
                                 {0x1F300, 0x1F64F}, {0x300, 0x36F}};
    std::mt19937 rng(1234);
    for (int iter = 0; iter < 200; ++iter) {
        std::string text;
        const int n = static_cast<int>(rng() % 40);
        for (int i = 0; i < n; ++i) {
            const auto& pool = pools[rng() % (sizeof(pools) / sizeof(pools[0]))];
            uint32_t c = pool[0] + rng() % (pool[1] - pool[0] + 1);
            if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
            append_utf8(c, &text);
        }
        const std::vector<int32_t> ids = tok->encode(text, false, false);
        for (const int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok->n_vocab()) << id;
        EXPECT_EQ(tok->decode(ids, false), text) << "iteration " << iter;
    }
}

TEST(LoadTokenizer, PathErrors) {
    auto r = load_tokenizer("/no/such/model.gguf");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kIo);
    EXPECT_NE(r.error().message.find("/no/such/model.gguf"), std::string::npos);
    const std::string dir = ::testing::TempDir() + "/lowbit_load_tokenizer_empty_dir";
    ASSERT_EQ(std::system(("mkdir -p '" + dir + "'").c_str()), 0);
    r = load_tokenizer(dir);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_NE(r.error().message.find("tokenizer.json"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(LlamaCpp, VocabVectors,
                         ::testing::Values("llama-spm", "gpt-2", "falcon", "starcoder", "deepseek-coder"),
                         [](const ::testing::TestParamInfo<const char*>& param) {
                             std::string n = param.param;
                             for (char& c : n)
                                 if (c == '-') c = '_';
                             return n;
                         });

} // namespace
} // namespace lowbit::tokenizer
