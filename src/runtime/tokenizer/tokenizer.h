// SPDX-License-Identifier: MIT
// Tokenizer: text <-> token ids for the vocabularies GGUF describes (format::VocabData), reproducing
// llama.cpp's llama-vocab.cpp: SentencePiece BPE with byte fallback (model "llama") and byte-level BPE with a
// pre-tokenizer chosen by `pre` (model "gpt2").
// Goals: the same ids as llama.cpp (and so as Hugging Face tokenizers) on llama.cpp's tokenizer test vectors.
// Non-goals: WordPiece/Unigram/RWKV vocabularies, training, normalizers beyond SentencePiece's space escape.
#pragma once

#include "core/error.h"
#include "format/vocab.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::tokenizer {

enum class TokenizerKind { kSpm, kBpe };

// Immutable after create(); copies share the tables; all const methods are thread-safe.
class Tokenizer {
  public:
    // Validates the vocabulary (sizes of scores/types, special ids in range, merges well formed, known
    // model and pre-tokenizer) and builds the lookup tables. kUnsupported for other models/pre-tokenizers.
    static Result<Tokenizer> create(const format::VocabData& vocab);

    // add_special: prepend BOS / append EOS as the vocabulary's add_bos/add_eos say.
    // parse_special: control and unknown-type tokens written in `text` (e.g. "<|eot_id|>") become their ids;
    // user-defined (added) tokens are always recognized, as in llama.cpp. Bytes that are not valid UTF-8 are
    // tokenized as U+FFFD (byte-level BPE) or byte tokens (SentencePiece). Cost: O(n log n) in text length.
    std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

    // The bytes a token stands for (may be part of a UTF-8 sequence). Control/unknown tokens give their
    // text when `special`, else "". Ids out of range give "".
    std::string token_to_piece(int32_t id, bool special = true) const;
    // Concatenated pieces; for SentencePiece with add_space_prefix the first token that is not a control or
    // unknown token loses one leading space (so decode(encode(s, true, false)) == s, as Hugging Face's Strip
    // decoder). No clean-up of spaces before punctuation. Invalid UTF-8 is kept as bytes (see Detokenizer).
    std::string decode(const std::vector<int32_t>& ids, bool special = true) const;

    TokenizerKind kind() const;
    int32_t n_vocab() const;
    const std::string& token_text(int32_t id) const; // raw vocabulary entry; "" when out of range
    format::TokenType token_type(int32_t id) const;
    int32_t bos_id() const; // -1 when the vocabulary has none
    int32_t eos_id() const;
    int32_t eot_id() const; // from the vocabulary, else detected from well-known texts ("<|eot_id|>", ...)
    int32_t unk_id() const;
    bool add_bos() const;
    bool add_eos() const;
    bool is_eog(int32_t id) const; // end of generation: eos, eot and well-known end-of-turn control tokens

    struct Impl;

  private:
    explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<const Impl> impl_;
};

// Streaming decode for generated tokens: push() returns only complete UTF-8 text and holds back the
// bytes of a multibyte character split across tokens until they complete. Bytes that can never form a
// valid sequence are replaced by U+FFFD, so every returned string is valid UTF-8. Not thread-safe.
class Detokenizer {
  public:
    explicit Detokenizer(const Tokenizer& tokenizer, bool special = true) : tok_(tokenizer), special_(special) {}
    std::string push(int32_t id);
    std::string flush(); // whatever is held back (as U+FFFD when incomplete), and reset
  private:
    Tokenizer tok_;
    bool special_;
    std::string pending_;
};

// Valid UTF-8 from arbitrary bytes: each malformed byte becomes U+FFFD.
std::string sanitize_utf8(std::string_view bytes);

} // namespace lowbit::tokenizer
