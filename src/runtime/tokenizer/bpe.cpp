// SPDX-License-Identifier: MIT
// Byte-level BPE (llama.cpp's llm_tokenizer_bpe): split text into words with the pre-tokenizer regexes,
// map each word's bytes to GPT-2 code points, then repeatedly merge the adjacent pair with the lowest merge
// rank (ties: leftmost) and emit the ids of the resulting symbols.
#include "runtime/tokenizer/tokenizer_impl.h"
#include "runtime/tokenizer/unicode.h"

#include <queue>

namespace lowbit::tokenizer {
namespace {

struct Symbol {
    int prev, next;
    const char* text;
    size_t n;
};

struct Bigram {
    int left, right;
    int rank;
    std::string text;
    // Lowest rank first; on ties the leftmost pair.
    bool operator<(const Bigram& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
};

// Merges one byte-encoded word into symbols (pieces of `word`), appended to `out` in order.
void merge_word(const Tokenizer::Impl& t, const std::string& word, std::vector<std::string>* out) {
    std::vector<Symbol> symbols;
    const bool whole = t.ignore_merges || (t.whole_newline_words && word.find_first_not_of('\n') == std::string::npos);
    if (whole && t.find(word) >= 0) {
        out->push_back(word);
        return;
    }
    for (size_t offs = 0; offs < word.size();) {
        const size_t n = std::min(utf8_len(word[offs]), word.size() - offs);
        const int index = static_cast<int>(symbols.size());
        symbols.push_back(Symbol{index - 1, offs + n == word.size() ? -1 : index + 1, word.data() + offs, n});
        offs += n;
    }
    std::priority_queue<Bigram> queue;
    const auto add_bigram = [&](int left, int right) {
        if (left == -1 || right == -1) return;
        std::string l(symbols[left].text, symbols[left].n), r(symbols[right].text, symbols[right].n);
        const int rank = t.bpe_rank(l, r);
        if (rank >= 0) queue.push(Bigram{left, right, rank, l + r});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) add_bigram(i - 1, i);
    while (!queue.empty()) {
        const Bigram b = queue.top();
        queue.pop();
        Symbol& left = symbols[b.left];
        Symbol& right = symbols[b.right];
        if (left.n == 0 || right.n == 0) continue;
        if (left.n + right.n != b.text.size() || std::string_view(left.text, left.n + right.n) != b.text)
            continue; // stale: one side changed since the pair was queued
        left.n += right.n;
        right.n = 0;
        left.next = right.next;
        if (right.next >= 0) symbols[right.next].prev = b.left;
        add_bigram(left.prev, b.left);
        add_bigram(b.left, left.next);
    }
    for (const Symbol& s : symbols)
        if (s.n > 0) out->emplace_back(s.text, s.n);
}

} // namespace

int Tokenizer::Impl::bpe_rank(const std::string& left, const std::string& right) const {
    std::string key;
    key.reserve(left.size() + right.size() + 1);
    key.append(left).push_back('\0');
    key.append(right);
    const auto it = bpe_ranks.find(key);
    return it == bpe_ranks.end() ? -1 : it->second;
}

std::vector<std::string> bpe_pre_tokenize(const std::vector<Regex>& regexes, std::string_view text, bool byte_encode) {
    const std::vector<uint32_t> cpts = utf8_to_cpts(text);
    std::vector<uint8_t> flags(cpts.size());
    for (size_t i = 0; i < cpts.size(); ++i) flags[i] = cpt_flags(cpts[i]);
    std::vector<size_t> offsets = {cpts.size()};
    for (const Regex& re : regexes) offsets = regex_split(re, cpts, flags, offsets);
    std::vector<std::string> words;
    words.reserve(offsets.size());
    size_t start = 0;
    for (const size_t n : offsets) {
        std::string word;
        for (size_t i = start; i < start + n; ++i) append_utf8(cpts[i], &word);
        words.push_back(byte_encode ? tokenizer::byte_encode(word) : word);
        start += n;
    }
    return words;
}

void bpe_tokenize(const Tokenizer::Impl& t, std::string_view text, std::vector<int32_t>* out) {
    std::vector<std::string> pieces;
    for (const std::string& word : bpe_pre_tokenize(t.pre_regexes, text, t.byte_encode)) {
        pieces.clear();
        merge_word(t, word, &pieces);
        for (const std::string& piece : pieces) {
            const int32_t id = t.find(piece);
            if (id >= 0) {
                out->push_back(id);
                continue;
            }
            // Not an entry (a vocabulary without all byte tokens): single bytes that are entries, as llama.cpp;
            // without byte encoding the byte tokens are spelled <0xXX>.
            for (char ch : piece) {
                std::string byte_text(1, ch);
                if (!t.byte_encode) {
                    static const char* kHex = "0123456789ABCDEF";
                    const auto b = static_cast<uint8_t>(ch);
                    byte_text = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
                }
                const int32_t byte_id = t.find(byte_text);
                if (byte_id >= 0) out->push_back(byte_id);
            }
        }
    }
}

} // namespace lowbit::tokenizer
