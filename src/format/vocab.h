// SPDX-License-Identifier: MIT
// VocabData: a tokenizer's vocabulary exactly as GGUF stores it (tokenizer.ggml.*). Filled from GGUF
// metadata or from a Hugging Face tokenizer.json (+ tokenizer_config.json); consumed by the tokenizer
// (runtime/tokenizer) and written by `lowbit convert`. Formats only carry it; they never tokenize.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::format {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
    kUndefined = 0,
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,
    kUserDefined = 4,
    kUnused = 5,
    kByte = 6
};

struct VocabData {
    std::string model;                  // tokenizer.ggml.model: "llama" (SentencePiece BPE), "gpt2" (byte-level BPE)
    std::string pre;                    // tokenizer.ggml.pre: "default", "llama-bpe", "gpt-2", "qwen2", "falcon", ...
    std::vector<std::string> tokens;    // [n_vocab], UTF-8 pieces (byte-level BPE: GPT-2 byte-to-unicode form)
    std::vector<float> scores;          // [n_vocab] or empty
    std::vector<TokenType> token_types; // [n_vocab] or empty (then all kNormal)
    std::vector<std::string> merges;    // BPE merges "a b", in rank order (empty for SPM)
    int64_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1, eot_id = -1;
    bool add_bos = false, add_eos = false;
    bool add_space_prefix = true; // SPM: prepend "▁" (tokenizer.ggml.add_space_prefix)
    std::string chat_template;    // tokenizer.chat_template, may be empty
};

} // namespace lowbit::format
