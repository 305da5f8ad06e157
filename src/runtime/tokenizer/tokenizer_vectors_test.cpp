// SPDX-License-Identifier: MIT
// llama.cpp's tokenizer test vectors (test-tokenizer-0): every input of ggml-vocab-NAME.gguf.inp must give the
// ids of the matching .out line, tokenized with add_special = false and parse_special = false.
#include "core/test_support.h"
#include "runtime/tokenizer/load.h"

#include <fstream>
#include <gtest/gtest.h>
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
