// SPDX-License-Identifier: MIT
// KL divergence of a model against stored base log-probabilities (logprob_file.h), with the statistics of
// llama.cpp's `llama-perplexity --kl-divergence`, defined exactly as there:
//   per scored token: KLD = sum_i p_base[i] * (log p_base[i] - log p[i]) over the entries whose stored
//   log p_base > -16 (p_base from the uint16 codes, not renormalized); nll = -log p(token), nll_base likewise
//   from the codes; delta_p = p(token) - p_base(token); top-1 agreement when the first argmax of the logits
//   equals the first argmax of the stored codes.
//   mean_and_uncertainty(sum, sum2, n) = (m, sqrt((sum2/n - m^2)/(n-1))) (uncertainty 0 when n <= 10);
//   covariance of nll, nll_base = (E[ab] - E[a]E[b]) / (n-1) (0 when n < 10); PPL = exp(mean nll) with
//   uncertainty PPL * u(nll); ln(PPL ratio) uncertainty sqrt(u^2 + u_base^2 - 2 cov); RMS delta_p =
//   sqrt(mean delta_p^2) with uncertainty u(delta_p^2) / (2 RMS); top-1 uncertainty sqrt(f(1-f)/(n-1));
//   percentiles interpolate linearly at fraction*(n-1) of the sorted values; the median averages the two
//   middle values when n is even.
#pragma once

#include "core/error.h"
#include "pipeline/perplexity/logprob_file.h"
#include "runtime/language_model.h"

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace lowbit::pipeline {

struct ValueWithError {
    double value = 0;
    double error = 0;
};

// Sums over scored tokens (llama.cpp's kl_divergence_result).
struct KldSums {
    double sum_nll = 0, sum_nll2 = 0, sum_nll_base = 0, sum_nll_base2 = 0, sum_nll_nll_base = 0;
    double sum_kld = 0, sum_kld2 = 0, sum_p_diff = 0, sum_p_diff2 = 0, sum_p_diff4 = 0;
    double max_p_diff = 0;
    int64_t n_same_top = 0;
    int64_t count = 0;
};

// Sorted-value summary: max, 99.9, 99, 95, 90, 75, median, 25, 10, 5, 1, 0.1 percent, min.
struct Quantiles {
    double max = 0, p999 = 0, p99 = 0, p95 = 0, p90 = 0, p75 = 0, median = 0, p25 = 0, p10 = 0, p5 = 0, p1 = 0, p01 = 0,
           min = 0;
};

struct KldSummary {
    int64_t n_tokens = 0; // scored tokens
    ValueWithError ppl, ppl_base, ln_ppl_ratio, ppl_ratio, ppl_diff;
    double cor_ln_ppl = 0;                            // correlation of ln PPL(Q) and ln PPL(base); 0 when undefined
    ValueWithError kld, p_diff, p_diff_rms, same_top; // p_diff, p_diff_rms and same_top as fractions (not %)
    Quantiles kld_quantiles, p_diff_quantiles;        // quantiles only in the final summary
};

// Running statistics from the sums (what llama.cpp prints per chunk); quantiles left zero.
KldSummary summarize_kld(const KldSums& sums);
// Final statistics; `kld_values` and `p_diff_values` are the per-token values (any order, copied and sorted).
KldSummary summarize_kld(const KldSums& sums, std::vector<float> kld_values, std::vector<float> p_diff_values);

// llama.cpp's percentile: linear interpolation at fraction*(n-1) of sorted `values` (non-empty).
double percentile(const std::vector<float>& sorted_values, double fraction);

struct KldOptions {
    int64_t n_batch = 512;
    int64_t n_chunks = -1; // < 0: all chunks in the base file
    int32_t bos_id = -1;   // this model's BOS; must equal the base file's (both -1 when neither adds BOS)
};

struct KldChunkReport {
    int64_t index = 0;
    int64_t n_chunks = 0;
    KldSummary running;
};
using KldChunkCallback = std::function<void(const KldChunkReport&)>;

struct KldResult {
    KldSummary summary;
    int64_t n_chunks = 0;
    int64_t n_ctx = 0;
    double seconds = 0;
    std::vector<float> kld_values;    // per scored token, in stream order
    std::vector<float> p_diff_values; // per scored token, in stream order
};

// Evaluates the base file's tokens chunk by chunk (same BOS replacement and scored half as perplexity) and
// compares with the stored rows. Errors: kBadInput when the base does not fit this model (vocabulary size,
// BOS id, context larger than the model's); kUsage for bad options.
Result<KldResult> compute_kl_divergence(runtime::LanguageModel& model, const LogProbReader& base,
                                        const KldOptions& options, const KldChunkCallback& on_chunk = {});

// kBadInput naming the first differing position when `tokens` (the text given with -f, tokenized by this
// model) does not begin with the base file's token stream (different text or tokenizer).
Status check_base_tokens(const LogProbReader& base, std::span<const int32_t> tokens);

} // namespace lowbit::pipeline
