// SPDX-License-Identifier: MIT
// The pre-tokenizer table: what a tokenizer.ggml.pre name means for a BPE vocabulary (llama.cpp's
// llama_vocab::impl::load names and llm_tokenizer_bpe regexes) - the regexes applied one after another and the
// flags that change how words are merged. Pure data, shared by the tokenizer (runtime/tokenizer) and by
// tokenizer.json reading, which names the row whose regexes its Split steps spell. Adding one = one row.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lowbit::format {

struct PreTokenizerRow {
    std::vector<std::string> names;   // tokenizer.ggml.pre values; the first is the one lowbit writes
    std::vector<std::string> regexes; // applied in order, each splitting the pieces of the previous one
    bool ignore_merges = false;       // a word that is a vocabulary entry is one token without merging
    bool byte_encode = true;          // words are mapped byte by byte to GPT-2 code points before merging
    bool escape_whitespace = false;   // ' ' becomes U+2581 before splitting (SentencePiece-style BPE)
    bool whole_newline_words = false; // a word of only '\n' that is a vocabulary entry stays whole (Gemma 4)
};

const std::vector<PreTokenizerRow>& pre_tokenizer_rows();
// The row that has `name`; nullptr when none.
const PreTokenizerRow* find_pre_tokenizer(std::string_view name);
// The first row whose regex list is exactly `regexes` (as a tokenizer.json spells its Split steps), after
// mapping the Hugging Face spellings lowbit writes differently; nullptr when none.
const PreTokenizerRow* find_pre_tokenizer_by_regexes(const std::vector<std::string>& regexes);
// "default, llama-bpe, ..." (every name, for messages).
std::string pre_tokenizer_name_list();

} // namespace lowbit::format
