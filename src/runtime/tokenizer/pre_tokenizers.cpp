// SPDX-License-Identifier: MIT
// The pre-tokenizer table: tokenizer.ggml.pre name -> regexes applied in order (llama.cpp's
// llm_tokenizer_bpe constructor and llama_vocab::impl::load). Adding a pre-tokenizer = one row.
#include "runtime/tokenizer/tokenizer_impl.h"

#include <cstring>

namespace lowbit::tokenizer {
namespace {

// GPT-2's pattern (also the second step of falcon/starcoder/default).
constexpr const char* kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
// Llama 3's pattern with the (?i:...) contractions spelled out, as llama.cpp does.
constexpr const char* kLlama3 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
                                "\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// Qwen2: as Llama 3 but single digits.
constexpr const char* kQwen2 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
                               "\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct PreTokenizerRow {
    const char* names[10]; // tokenizer.ggml.pre values (nullptr-terminated)
    std::vector<std::string> regexes;
    bool ignore_merges;
};

const std::vector<PreTokenizerRow>& rows() {
    static const std::vector<PreTokenizerRow> kRows = {
        {{"", "default"}, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}, false},
        {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"}, {kLlama3}, true},
        {{"dbrx", "smaug-bpe"}, {kLlama3}, false},
        {{"deepseek-coder"}, {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"}, false},
        {{"falcon"}, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"}, false},
        {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"}, {"\\p{N}", kGpt2}, false},
        {{"gpt-2", "phi-2", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "mpt", "olmo", "jais", "gigachat"},
         {kGpt2},
         false},
        {{"qwen2", "stablelm2", "deepseek-r1-qwen", "megrez", "hunyuan"}, {kQwen2}, false},
    };
    return kRows;
}

} // namespace

bool pre_tokenizer_regexes(const std::string& pre, std::vector<std::string>* regexes, bool* ignore_merges) {
    for (const PreTokenizerRow& row : rows()) {
        for (size_t i = 0; i < 10 && row.names[i]; ++i) {
            if (pre != row.names[i]) continue;
            *regexes = row.regexes;
            *ignore_merges = row.ignore_merges;
            return true;
        }
    }
    return false;
}

} // namespace lowbit::tokenizer
