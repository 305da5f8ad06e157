// SPDX-License-Identifier: MIT
// LanguageModel: what generation, perplexity/KLD evaluation and the server need from a loaded model —
// token ids in, logits out, with a KV cache. The transformer Session implements it; tests may implement
// it with tiny closed-form models (e.g. a bigram table) to check evaluation code by brute force.
// Thread-safety: one eval at a time per instance.
#pragma once

#include "core/error.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace lowbit::runtime {

class LanguageModel {
  public:
    virtual ~LanguageModel() = default;
    virtual int64_t n_vocab() const = 0;
    virtual int64_t n_ctx() const = 0;  // maximum positions (KV cache capacity)
    virtual int64_t n_past() const = 0; // tokens already in the KV cache
    // Drops cache entries at positions >= n_past (0 clears everything).
    virtual void truncate(int64_t n_past) = 0;
    // Appends `tokens` at positions [n_past, n_past + n) and fills `logits`:
    //   all_logits: [n, n_vocab] row-major, one row per input token;  else: [1, n_vocab] for the last token.
    // Errors: kUsage if n_past + n > n_ctx or a token id is out of range.
    virtual Status eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits) = 0;
    // Why eval produced non-finite logits, when the model can tell (e.g. "tensor 'X' holds nan at row R, column C");
    // "" when it cannot. Called on error paths only (it may read every weight).
    virtual std::string explain_non_finite() const { return {}; }
};

} // namespace lowbit::runtime
