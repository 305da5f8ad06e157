// SPDX-License-Identifier: MIT
// Hugging Face tokenizer.json (+ tokenizer_config.json) -> format::VocabData (what GGUF stores as
// tokenizer.ggml.*), following llama.cpp's convert_hf_to_gguf.py:
//   - BPE with a byte-level pre-tokenizer -> model "gpt2": tokens = vocab keys ordered by id, merges "a b"
//     (string or [a, b] pair forms), added tokens: special -> kControl, else kUserDefined;
//   - BPE with byte_fallback (SentencePiece-style) -> model "llama": scores = -id (rank), <0xXX> -> kByte,
//     the unk token -> kUnknown, special added tokens -> kControl;
//   - `pre` from the pre-tokenizer's Split regex: Llama-3 -> "llama-bpe", Qwen2 -> "qwen2", GPT-2 (ByteLevel
//     use_regex) -> "gpt-2", else "default" with a warning.
// Ids missing from the vocab (and ids up to `n_vocab_min`) become "[PAD<i>]" with type kUnused, as llama.cpp does.
#pragma once

#include "core/error.h"
#include "format/vocab.h"

#include <cstdint>
#include <string>

namespace lowbit::hf {

// Reads <dir>/tokenizer.json and, when present, <dir>/tokenizer_config.json.
// Errors: kBadInput (missing/malformed file, inconsistent ids), kUnsupported (model type other than BPE).
Result<format::VocabData> parse_hf_tokenizer(const std::string& dir, int64_t n_vocab_min = 0);
// The same from JSON texts (tokenizer_config_json may be empty).
Result<format::VocabData> parse_tokenizer_json(const std::string& tokenizer_json,
                                               const std::string& tokenizer_config_json, int64_t n_vocab_min = 0);

// The GGUF pre-tokenizer name for a Split regex ("" if unknown).
std::string pre_from_regex(const std::string& regex);

} // namespace lowbit::hf
