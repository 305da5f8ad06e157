// SPDX-License-Identifier: MIT
// Tokenizer: vocabulary validation and tables, special-token partitioning, encode/decode, Detokenizer.
#include "runtime/tokenizer/tokenizer.h"

#include "format/pre_tokenizers.h"
#include "runtime/tokenizer/tokenizer_impl.h"
#include "runtime/tokenizer/unicode.h"

#include <algorithm>
#include <list>

namespace lowbit::tokenizer {
namespace {

using format::TokenType;

// End-of-turn control tokens that llama.cpp treats as end of generation even when the GGUF names none.
const char* const kEogTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>",         "<end_of_turn>",        "<|endoftext|>",
                                 "<|eom_id|>", "<EOT>",      "<|end_of_text|>", "<｜end▁of▁sentence｜>"};

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

Error bad_vocab(const std::string& what) {
    return make_error(ErrorCode::kBadInput, "tokenizer vocabulary: " + what);
}

Result<int32_t> check_id(int64_t id, size_t n_vocab, const char* name) {
    if (id < -1 || id >= static_cast<int64_t>(n_vocab))
        return bad_vocab(std::string(name) + " id " + std::to_string(id) + " is outside the vocabulary of " +
                         std::to_string(n_vocab) + " tokens");
    return static_cast<int32_t>(id);
}

Status build_bpe(const format::VocabData& v, Tokenizer::Impl* t) {
    // llama.cpp: the "gemma4" model is BPE with the gemma4 pre-tokenizer whatever tokenizer.ggml.pre says.
    const std::string pre = v.model == "gemma4" ? "gemma4" : v.pre;
    const format::PreTokenizerRow* row = format::find_pre_tokenizer(pre);
    if (!row)
        return make_error(ErrorCode::kUnsupported,
                          "tokenizer: unknown pre-tokenizer '" + pre +
                              "' (tokenizer.ggml.pre); supported: " + format::pre_tokenizer_name_list());
    t->ignore_merges = row->ignore_merges;
    t->byte_encode = row->byte_encode;
    t->escape_whitespace = row->escape_whitespace;
    t->whole_newline_words = row->whole_newline_words;
    for (const std::string& p : row->regexes) {
        LOWBIT_ASSIGN_OR_RETURN(Regex re, Regex::compile(p));
        t->pre_regexes.push_back(std::move(re));
    }
    t->bpe_ranks.reserve(v.merges.size());
    for (size_t i = 0; i < v.merges.size(); ++i) {
        const std::string& m = v.merges[i];
        const size_t pos = m.find(' ', 1);
        if (pos == std::string::npos)
            return bad_vocab("merge " + std::to_string(i) + " '" + m + "' is not two pieces separated by a space");
        std::string key = m.substr(0, pos);
        key.push_back('\0');
        key.append(m, pos + 1);
        t->bpe_ranks.emplace(std::move(key), static_cast<int32_t>(i)); // first rank wins for duplicates
    }
    return ok_status();
}

struct Fragment {
    int32_t token = -1; // -1: raw text [offset, offset + length)
    size_t offset = 0, length = 0;
};

// Splits the raw-text fragments at every occurrence of each special token, longest tokens first
// (llama.cpp's tokenizer_st_partition). Control/unknown tokens only when parse_special.
std::list<Fragment> partition(const Tokenizer::Impl& t, std::string_view text, bool parse_special) {
    std::list<Fragment> frags;
    if (text.empty()) return frags;
    frags.push_back(Fragment{-1, 0, text.size()});
    for (const int32_t id : t.special_tokens) {
        const TokenType type = t.types[id];
        if (!parse_special && (type == TokenType::kControl || type == TokenType::kUnknown)) continue;
        const std::string& special = t.tokens[id];
        if (special.empty()) continue;
        for (auto it = frags.begin(); it != frags.end(); ++it) {
            if (it->token >= 0) continue;
            const std::string_view frag = text.substr(it->offset, it->length);
            const size_t match = frag.find(special);
            if (match == std::string_view::npos) continue;
            // Split into [left text] [token] [right text]; the right part is visited next by the loop.
            const size_t base = it->offset;
            const size_t right_len = it->length - match - special.size();
            if (match > 0) frags.insert(it, Fragment{-1, base, match});
            it->token = id;
            it->offset = base + match;
            it->length = special.size();
            if (right_len > 0) frags.insert(std::next(it), Fragment{-1, base + match + special.size(), right_len});
        }
    }
    return frags;
}

} // namespace

Result<Tokenizer> Tokenizer::create(const format::VocabData& v) {
    auto t = std::make_shared<Impl>();
    if (v.model == "llama") {
        t->kind = TokenizerKind::kSpm;
    } else if (v.model == "gpt2" || v.model == "gemma4") {
        t->kind = TokenizerKind::kBpe;
    } else {
        return make_error(ErrorCode::kUnsupported, "tokenizer: model '" + v.model +
                                                       "' (tokenizer.ggml.model) is not supported; expected "
                                                       "'llama' (SentencePiece), 'gpt2' (BPE) or 'gemma4' (BPE on "
                                                       "raw UTF-8)");
    }
    const size_t n = v.tokens.size();
    if (n == 0) return bad_vocab("no tokens");
    if (n > static_cast<size_t>(INT32_MAX)) return bad_vocab("too many tokens");
    if (!v.scores.empty() && v.scores.size() != n)
        return bad_vocab(std::to_string(v.scores.size()) + " scores for " + std::to_string(n) + " tokens");
    if (!v.token_types.empty() && v.token_types.size() != n)
        return bad_vocab(std::to_string(v.token_types.size()) + " token types for " + std::to_string(n) + " tokens");
    t->tokens = v.tokens;
    t->scores = v.scores.empty() ? std::vector<float>(n, 0.0f) : v.scores;
    t->types = v.token_types.empty() ? std::vector<TokenType>(n, TokenType::kNormal) : v.token_types;
    t->token_to_id.reserve(n);
    for (size_t i = 0; i < n; ++i) t->token_to_id[t->tokens[i]] = static_cast<int32_t>(i);
    LOWBIT_ASSIGN_OR_RETURN(t->bos, check_id(v.bos_id, n, "BOS"));
    LOWBIT_ASSIGN_OR_RETURN(t->eos, check_id(v.eos_id, n, "EOS"));
    LOWBIT_ASSIGN_OR_RETURN(t->eot, check_id(v.eot_id, n, "EOT"));
    LOWBIT_ASSIGN_OR_RETURN(t->unk, check_id(v.unk_id, n, "UNK"));
    LOWBIT_TRY(check_id(v.pad_id, n, "PAD"));
    t->add_bos = v.add_bos && t->bos >= 0;
    t->add_eos = v.add_eos && t->eos >= 0;
    t->add_space_prefix = v.add_space_prefix;
    if (t->kind == TokenizerKind::kBpe) LOWBIT_TRY(build_bpe(v, t.get()));

    for (size_t i = 0; i < n; ++i) {
        const TokenType type = t->types[i];
        if (type == TokenType::kControl || type == TokenType::kUserDefined || type == TokenType::kUnknown)
            t->special_tokens.push_back(static_cast<int32_t>(i));
    }
    std::stable_sort(t->special_tokens.begin(), t->special_tokens.end(),
                     [&](int32_t a, int32_t b) { return t->tokens[a].size() > t->tokens[b].size(); });
    for (const char* text : kEogTexts) {
        const int32_t id = t->find(text);
        if (id < 0 || t->types[id] != TokenType::kControl) continue;
        if (t->eot < 0 && std::string_view(text) != "<|endoftext|>") t->eot = id;
        t->eog.insert(id);
    }
    if (t->eos >= 0) t->eog.insert(t->eos);
    if (t->eot >= 0) t->eog.insert(t->eot);
    return Tokenizer(std::move(t));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    const Impl& t = *impl_;
    std::vector<int32_t> out;
    if (add_special && t.add_bos) out.push_back(t.bos);
    bool prev_special = true; // SentencePiece: a space prefix at the start and after a special token
    for (const Fragment& f : partition(t, text, parse_special)) {
        if (f.token >= 0) {
            out.push_back(f.token);
            prev_special = true;
            continue;
        }
        const std::string_view raw = text.substr(f.offset, f.length);
        if (t.kind == TokenizerKind::kBpe) {
            if (!t.escape_whitespace) {
                bpe_tokenize(t, raw, &out);
                continue;
            }
            std::string escaped;
            for (char ch : raw) escaped += ch == ' ' ? std::string("\xe2\x96\x81") : std::string(1, ch);
            bpe_tokenize(t, escaped, &out);
            continue;
        }
        std::string escaped = (t.add_space_prefix && prev_special) ? "\xe2\x96\x81" : "";
        for (char ch : raw) escaped += ch == ' ' ? std::string("\xe2\x96\x81") : std::string(1, ch);
        spm_tokenize(t, escaped, &out);
        prev_special = false;
    }
    if (add_special && t.add_eos) out.push_back(t.eos);
    return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
    const Impl& t = *impl_;
    if (id < 0 || id >= n_vocab()) return "";
    const std::string& text = t.tokens[id];
    switch (t.types[id]) {
    case TokenType::kControl:
    case TokenType::kUnknown:
        return special ? text : std::string();
    case TokenType::kUserDefined:
        return text;
    case TokenType::kByte:
        if ((t.kind == TokenizerKind::kSpm || !t.byte_encode) && text.size() == 6 && text.compare(0, 3, "<0x") == 0 &&
            text[5] == '>') {
            const int hi = hex_digit(text[3]), lo = hex_digit(text[4]);
            if (hi >= 0 && lo >= 0) return std::string(1, static_cast<char>(hi * 16 + lo));
        }
        return "";
    case TokenType::kNormal:
        break;
    default:
        return "";
    }
    std::string piece;
    if (t.kind == TokenizerKind::kSpm || !t.byte_encode) { // raw UTF-8 pieces, spaces as U+2581
        for (size_t i = 0; i < text.size(); ++i) {
            if (text.compare(i, 3, "\xe2\x96\x81") == 0) {
                piece.push_back(' ');
                i += 2;
            } else {
                piece.push_back(text[i]);
            }
        }
        return piece;
    }
    for (const uint32_t cpt : utf8_to_cpts(text)) {
        const int byte = unicode_to_byte(cpt);
        if (byte >= 0)
            piece.push_back(static_cast<char>(byte));
        else
            append_utf8(cpt, &piece); // not a byte-level code point: keep it as text
    }
    return piece;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool special) const {
    std::string out;
    // SentencePiece's prefix space: removed from the first token that is not a control/unknown token.
    bool strip = impl_->kind == TokenizerKind::kSpm && impl_->add_space_prefix;
    for (const int32_t id : ids) {
        std::string piece = token_to_piece(id, special);
        const TokenType type = token_type(id);
        if (strip && type != TokenType::kControl && type != TokenType::kUnknown) {
            if (!piece.empty() && piece[0] == ' ') piece.erase(0, 1);
            strip = false;
        }
        out += piece;
    }
    return out;
}

TokenizerKind Tokenizer::kind() const {
    return impl_->kind;
}
int32_t Tokenizer::n_vocab() const {
    return static_cast<int32_t>(impl_->tokens.size());
}
const std::string& Tokenizer::token_text(int32_t id) const {
    static const std::string kEmpty;
    return id >= 0 && id < n_vocab() ? impl_->tokens[id] : kEmpty;
}
format::TokenType Tokenizer::token_type(int32_t id) const {
    return id >= 0 && id < n_vocab() ? impl_->types[id] : TokenType::kUndefined;
}
int32_t Tokenizer::bos_id() const {
    return impl_->bos;
}
int32_t Tokenizer::eos_id() const {
    return impl_->eos;
}
int32_t Tokenizer::eot_id() const {
    return impl_->eot;
}
int32_t Tokenizer::unk_id() const {
    return impl_->unk;
}
bool Tokenizer::add_bos() const {
    return impl_->add_bos;
}
bool Tokenizer::add_eos() const {
    return impl_->add_eos;
}
bool Tokenizer::is_eog(int32_t id) const {
    return impl_->eog.count(id) != 0;
}

std::string sanitize_utf8(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    size_t offset = 0;
    while (offset < bytes.size()) {
        const size_t start = offset;
        uint32_t cpt;
        if (utf8_decode_one(bytes, &offset, &cpt)) {
            out.append(bytes.substr(start, offset - start));
        } else {
            out += "\xef\xbf\xbd"; // U+FFFD
            ++offset;
        }
    }
    return out;
}

std::string Detokenizer::push(int32_t id) {
    pending_ += tok_.token_to_piece(id, special_);
    const size_t complete = utf8_complete_prefix(pending_);
    std::string out = sanitize_utf8(std::string_view(pending_).substr(0, complete));
    pending_.erase(0, complete);
    return out;
}

std::string Detokenizer::flush() {
    std::string out = sanitize_utf8(pending_);
    pending_.clear();
    return out;
}

} // namespace lowbit::tokenizer
