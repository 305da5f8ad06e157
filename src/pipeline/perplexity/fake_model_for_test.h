// SPDX-License-Identifier: MIT
// Test-only LanguageModel with closed-form logits, so evaluation code can be checked by brute force.
// The logits at position p depend on the token at p, the token before it, the FIRST token of the sequence
// (so a BOS replacement changes every row) and p itself (so position bookkeeping errors show):
//   logit[v] = 2 h(seq[p], v) + 0.8 h(seq[p-1] or -1, v + 7) + 0.6 h(seq[0], v + 13) + 0.02 p h(v, 3) + variant terms
// with h a hash mapped to [-1, 1]. fake_logits() is the pure function; FakeLanguageModel wraps it with a
// token history that behaves like a KV cache (n_ctx enforced, truncate honored).
#pragma once

#include "runtime/language_model.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace lowbit::pipeline::testing {

inline double fake_hash(int64_t a, int64_t b) {
    uint64_t x = uint64_t(a) * 0x9E3779B97F4A7C15ull ^ (uint64_t(b) + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return double(x >> 11) / double(1ull << 53) * 2.0 - 1.0;
}

// Row of logits [n_vocab] predicted at position p of `seq` (uses seq[0..p] only). `variant` != 0 perturbs it
// (a stand-in for a quantized copy of the same model).
inline std::vector<double> fake_logits(std::span<const int32_t> seq, int64_t p, int64_t n_vocab, double variant) {
    std::vector<double> row(static_cast<size_t>(n_vocab));
    const int64_t prev = p > 0 ? seq[size_t(p - 1)] : -1;
    for (int64_t v = 0; v < n_vocab; ++v) {
        double l = 2.0 * fake_hash(seq[size_t(p)], v) + 0.8 * fake_hash(prev, v + 7) + 0.6 * fake_hash(seq[0], v + 13) +
                   0.02 * double(p) * fake_hash(v, 3);
        if (variant != 0) l += variant * fake_hash(seq[size_t(p)] + 1000, v);
        row[size_t(v)] = l;
    }
    return row;
}

class FakeLanguageModel : public runtime::LanguageModel {
  public:
    FakeLanguageModel(int64_t n_vocab, int64_t n_ctx, double variant = 0)
        : n_vocab_(n_vocab), n_ctx_(n_ctx), variant_(variant) {}
    int64_t n_vocab() const override { return n_vocab_; }
    int64_t n_ctx() const override { return n_ctx_; }
    int64_t n_past() const override { return static_cast<int64_t>(history_.size()); }
    void truncate(int64_t n_past) override {
        if (n_past < this->n_past()) history_.resize(static_cast<size_t>(n_past));
    }
    Status eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits) override {
        ++n_eval_calls;
        if (n_past() + static_cast<int64_t>(tokens.size()) > n_ctx_)
            return make_error(ErrorCode::kUsage, "fake model: context overflow");
        for (int32_t t : tokens)
            if (t < 0 || t >= n_vocab_) return make_error(ErrorCode::kUsage, "fake model: token out of range");
        logits.clear();
        for (size_t i = 0; i < tokens.size(); ++i) {
            history_.push_back(tokens[i]);
            if (!all_logits && i + 1 < tokens.size()) continue;
            const auto row = fake_logits(history_, n_past() - 1, n_vocab_, variant_);
            logits.insert(logits.end(), row.begin(), row.end());
        }
        return ok_status();
    }
    int64_t n_eval_calls = 0;

  private:
    int64_t n_vocab_, n_ctx_;
    double variant_;
    std::vector<int32_t> history_;
};

// Deterministic pseudo-random token stream in [0, n_vocab).
inline std::vector<int32_t> fake_tokens(int64_t n, int64_t n_vocab, int64_t seed = 1) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        t[size_t(i)] = static_cast<int32_t>((fake_hash(seed, i) * 0.5 + 0.5) * double(n_vocab - 1) + 0.5);
    return t;
}

} // namespace lowbit::pipeline::testing
