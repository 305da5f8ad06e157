// SPDX-License-Identifier: MIT
// Perplexity of a LanguageModel over a token stream, with two protocols:
//  - chunked (llama.cpp's llama-perplexity, the default): non-overlapping chunks of n_ctx tokens, the first
//    token of each chunk replaced by BOS when the vocabulary adds BOS, the KV cache cleared per chunk, and only
//    the second half scored: the tokens at chunk positions first+1 .. n_ctx-1 (first = n_ctx/2), each predicted
//    from everything before it in the chunk. Needs at least 2*n_ctx tokens.
//  - strided (Hugging Face transformers' "perplexity of fixed-length models"): windows of n_ctx tokens
//    starting every `stride` tokens; in each window only the tokens not scored by an earlier window (the last
//    trg_len = end - prev_end ones; labels before them are -100) are scored, each from its predecessors in the
//    window. No BOS replacement: the stream is scored as tokenized (the caller adds BOS at its start).
//    With stride == n_ctx a window's first token has no predecessor in it and is not scored (as in HF).
//    NLLs are summed per token (the doc's code re-weights each window's mean loss by a token count; summing
//    directly gives the exact mean over scored labels that the doc's formula defines).
// Both report PPL = exp(mean NLL over scored tokens) and llama.cpp's uncertainty
// PPL * sqrt((E[nll^2] - E[nll]^2) / (count - 1)).
#pragma once

#include "core/error.h"
#include "runtime/language_model.h"

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace lowbit::pipeline {

class LogProbWriter;

struct PerplexityOptions {
    int64_t n_ctx = 512;   // tokens per chunk / window
    int64_t n_batch = 512; // tokens per model.eval call
    int64_t n_chunks = -1; // < 0: all chunks (windows) the text has
    int64_t stride = 0;    // 0: chunked protocol; > 0: strided protocol with this stride (<= n_ctx)
    int32_t bos_id = -1;   // chunked protocol: written over each chunk's first token when >= 0
};

// Reported after each chunk (window) is scored.
struct ChunkReport {
    int64_t index = 0; // 0-based
    int64_t n_chunks = 0;
    double running_ppl = 0; // over all tokens scored so far
};
using ChunkCallback = std::function<void(const ChunkReport&)>;

struct PerplexityResult {
    double ppl = 0;
    double ppl_stderr = 0; // absolute, in PPL units (llama.cpp's "+/-")
    double mean_nll = 0;
    int64_t n_tokens = 0; // tokens in the input stream
    int64_t n_scored = 0;
    int64_t n_chunks = 0;
    int64_t n_ctx = 0;
    int64_t stride = 0;
    double seconds = 0;              // evaluation time (excludes tokenization)
    std::vector<double> running_ppl; // one per chunk
};

// Number of chunks (windows) the protocol evaluates for `n_tokens` tokens, before the n_chunks cap.
int64_t count_chunks(int64_t n_tokens, const PerplexityOptions& options);

// Errors: kUsage for bad options (n_ctx < 3, n_ctx above the model's, n_batch < 1, stride > n_ctx);
// kBadInput when the stream is too short ("you need at least 2*n_ctx tokens", chunked) or has ids outside
// the vocabulary; whatever model.eval returns. With `base_out` (chunked only) the log-probabilities of every
// scored position are streamed into it (logprob_file.h); the caller commits it.
Result<PerplexityResult> compute_perplexity(runtime::LanguageModel& model, std::span<const int32_t> tokens,
                                            const PerplexityOptions& options, const ChunkCallback& on_chunk = {},
                                            LogProbWriter* base_out = nullptr);

// Shared with the KL-divergence pass: validates n_ctx / n_batch against the model.
Status check_eval_options(const runtime::LanguageModel& model, int64_t n_ctx, int64_t n_batch);

// Shared with the KL-divergence pass: clears the cache and evaluates `tokens` (one chunk or window) in
// batches of n_batch, calling on_rows(pos0, logits [n, n_vocab]) for each batch's rows at positions pos0...
Status eval_in_batches(runtime::LanguageModel& model, std::span<const int32_t> tokens, int64_t n_batch,
                       const std::function<Status(int64_t, std::span<const float>)>& on_rows);

} // namespace lowbit::pipeline
