// SPDX-License-Identifier: MIT
// SentencePiece BPE (llama.cpp's llm_tokenizer_spm): start from UTF-8 characters, repeatedly merge the
// adjacent pair whose concatenation is the vocabulary entry with the highest score (ties: leftmost), then
// emit each symbol's id, re-splitting symbols that are not entries and falling back to <0xXX> byte tokens.
#include "runtime/tokenizer/tokenizer_impl.h"
#include "runtime/tokenizer/unicode.h"

#include <cstdio>
#include <queue>
#include <unordered_map>

namespace lowbit::tokenizer {
namespace {

struct Symbol {
    int prev, next;
    const char* text;
    size_t n; // bytes; 0 once merged into its left neighbour
};

struct Bigram {
    int left, right;
    float score;
    size_t size;
    // Highest score first; on ties the leftmost pair.
    bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
};

class SpmSession {
  public:
    explicit SpmSession(const Tokenizer::Impl& t) : t_(t) {}

    void tokenize(const std::string& text, std::vector<int32_t>* out) {
        for (size_t offs = 0; offs < text.size();) {
            const size_t n = std::min(utf8_len(text[offs]), text.size() - offs);
            const int index = static_cast<int>(symbols_.size());
            symbols_.push_back(Symbol{index - 1, offs + n == text.size() ? -1 : index + 1, text.data() + offs, n});
            offs += n;
        }
        for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) try_add_bigram(i - 1, i);
        while (!queue_.empty()) {
            const Bigram b = queue_.top();
            queue_.pop();
            Symbol& left = symbols_[b.left];
            Symbol& right = symbols_[b.right];
            if (left.n == 0 || right.n == 0 || left.n + right.n != b.size) continue; // stale
            left.n += right.n;
            right.n = 0;
            left.next = right.next;
            if (right.next >= 0) symbols_[right.next].prev = b.left;
            try_add_bigram(left.prev, b.left);
            try_add_bigram(b.left, left.next);
        }
        if (symbols_.empty()) return;
        for (int i = 0; i != -1; i = symbols_[i].next) resegment(symbols_[i], out);
    }

  private:
    void try_add_bigram(int left, int right) {
        if (left == -1 || right == -1) return;
        const std::string text(symbols_[left].text, symbols_[left].n + symbols_[right].n);
        const int32_t id = t_.find(text);
        if (id < 0) return;
        queue_.push(Bigram{left, right, t_.scores[id], text.size()});
        rev_merge_[text] = {left, right};
    }

    void resegment(const Symbol& symbol, std::vector<int32_t>* out) {
        const std::string text(symbol.text, symbol.n);
        const int32_t id = t_.find(text);
        if (id >= 0) {
            out->push_back(id);
            return;
        }
        const auto it = rev_merge_.find(text);
        if (it == rev_merge_.end()) {
            for (char ch : text) push_byte(static_cast<uint8_t>(ch), out);
            return;
        }
        resegment(symbols_[it->second.first], out);
        resegment(symbols_[it->second.second], out);
    }

    // <0xXX> token of a byte, else the byte as a one-character token, else unk (llama.cpp's byte_to_token).
    void push_byte(uint8_t byte, std::vector<int32_t>* out) const {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "<0x%02X>", byte);
        int32_t id = t_.find(buf);
        if (id < 0) id = t_.find(std::string(1, static_cast<char>(byte)));
        if (id < 0) id = t_.unk;
        if (id >= 0) out->push_back(id);
    }

    const Tokenizer::Impl& t_;
    std::vector<Symbol> symbols_;
    std::priority_queue<Bigram> queue_;
    std::unordered_map<std::string, std::pair<int, int>> rev_merge_;
};

} // namespace

void spm_tokenize(const Tokenizer::Impl& t, const std::string& escaped_text, std::vector<int32_t>* out) {
    SpmSession(t).tokenize(escaped_text, out);
}

} // namespace lowbit::tokenizer
