// SPDX-License-Identifier: MIT
// Internal tables shared by tokenizer.cpp, spm.cpp and bpe.cpp (not part of the runtime API).
#pragma once

#include "runtime/tokenizer/regex.h"
#include "runtime/tokenizer/tokenizer.h"

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace lowbit::tokenizer {

struct Tokenizer::Impl {
    TokenizerKind kind = TokenizerKind::kSpm;
    std::vector<std::string> tokens;                      // [n_vocab]
    std::vector<float> scores;                            // [n_vocab] (0 when the vocabulary has none)
    std::vector<format::TokenType> types;                 // [n_vocab]
    std::unordered_map<std::string, int32_t> token_to_id; // last id wins for duplicate texts, as llama.cpp
    std::unordered_map<std::string, int32_t> bpe_ranks;   // key: left + '\0' + right -> merge rank
    std::vector<int32_t> special_tokens;                  // control/user-defined/unknown ids, longest text first
    std::vector<Regex> pre_regexes;                       // BPE pre-tokenizer, applied one after another
    bool ignore_merges = false;                           // BPE: a pre-token that is a whole vocabulary entry is kept
    bool byte_encode = true;                              // BPE: words are GPT-2 byte-encoded before merging
    bool escape_whitespace = false;                       // BPE: ' ' -> U+2581 before pre-tokenizing (Gemma 4)
    bool whole_newline_words = false;                     // BPE: an all-'\n' word that is an entry stays whole
    bool add_space_prefix = true;                         // SPM
    bool add_bos = false, add_eos = false;
    int32_t bos = -1, eos = -1, eot = -1, unk = -1;
    std::unordered_set<int32_t> eog;

    int32_t find(const std::string& text) const {
        auto it = token_to_id.find(text);
        return it == token_to_id.end() ? -1 : it->second;
    }
    int bpe_rank(const std::string& left, const std::string& right) const;
};

// The algorithms, on one raw-text fragment (special tokens already split out); they append to `out`.
void spm_tokenize(const Tokenizer::Impl& t, const std::string& escaped_text, std::vector<int32_t>* out);
void bpe_tokenize(const Tokenizer::Impl& t, std::string_view text, std::vector<int32_t>* out);
// BPE pre-tokenizer: the words of `text`, byte-encoded (GPT-2 mapping) when `byte_encode`.
std::vector<std::string> bpe_pre_tokenize(const std::vector<Regex>& regexes, std::string_view text,
                                          bool byte_encode = true);

} // namespace lowbit::tokenizer
