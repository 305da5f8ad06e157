// SPDX-License-Identifier: MIT
// KL divergence against a stored base (see kl_divergence.h for the exact definitions, after llama.cpp's
// tools/perplexity/perplexity.cpp). Rows are scored in parallel and summed in stream order.
#include "pipeline/perplexity/kl_divergence.h"

#include "core/thread_pool.h"
#include "pipeline/perplexity/log_softmax.h"
#include "pipeline/perplexity/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

namespace lowbit::pipeline {

namespace {

struct RowKld {
    double kld = 0, nll = 0, nll_base = 0, p_diff = 0;
    bool same_top = false;
};

// One scored token: logits [n_vocab] of this model, the base's packed row, the target token.
RowKld row_kld(std::span<const float> logits, const uint16_t* base_row, int32_t token) {
    const RowStats s = row_stats(logits);
    const PackedRowHeader h = packed_row_header(base_row);
    const uint16_t* q = packed_row_codes(base_row);
    const double log_norm = double(s.max_logit) + s.log_sum_exp; // log p[i] = logit[i] - log_norm
    RowKld r;
    r.nll = log_norm - double(logits[size_t(token)]);
    r.nll_base = -(double(h.scale) * q[token] + double(h.min_log_prob));
    double sum = 0;
    int32_t imax_base = 0;
    uint16_t q_max = q[0];
    for (size_t i = 0; i < logits.size(); ++i) {
        if (q[i] > q_max) { // scale >= 0, so the first max code is the first max log-prob
            q_max = q[i];
            imax_base = static_cast<int32_t>(i);
        }
        const double lp_base = double(h.scale) * q[i] + double(h.min_log_prob);
        if (lp_base > -double(kLogProbFloor)) sum += std::exp(lp_base) * (lp_base - (double(logits[i]) - log_norm));
    }
    r.kld = sum;
    r.same_top = s.argmax == imax_base;
    r.p_diff = std::exp(-r.nll) - std::exp(-r.nll_base);
    return r;
}

void add(KldSums& k, const RowKld& r) {
    k.sum_nll += r.nll;
    k.sum_nll2 += r.nll * r.nll;
    k.sum_nll_base += r.nll_base;
    k.sum_nll_base2 += r.nll_base * r.nll_base;
    k.sum_nll_nll_base += r.nll * r.nll_base;
    k.sum_kld += r.kld;
    k.sum_kld2 += r.kld * r.kld;
    k.sum_p_diff += r.p_diff;
    const double d2 = r.p_diff * r.p_diff;
    k.sum_p_diff2 += d2;
    k.sum_p_diff4 += d2 * d2;
    k.max_p_diff = std::max(k.max_p_diff, std::fabs(r.p_diff));
    k.n_same_top += r.same_top ? 1 : 0;
    ++k.count;
}

ValueWithError mean_and_uncertainty(double sum, double sum2, int64_t count) {
    if (count < 1) return {};
    const double f = sum / double(count);
    double df = sum2 / double(count) - f * f;
    df = (df > 0 && count > 10) ? std::sqrt(df / double(count - 1)) : 0.0;
    return {f, df};
}

double covariance(double suma, double sumb, double sumab, int64_t count) {
    if (count < 10) return 0.0;
    const double n = double(count);
    return (sumab / n - (suma / n) * (sumb / n)) / (n - 1);
}

Quantiles quantiles(std::vector<float> v) {
    Quantiles q;
    if (v.empty()) return q;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    q.max = v.back();
    q.min = v.front();
    q.median = n % 2 == 0 ? 0.5 * (double(v[n / 2]) + double(v[n / 2 - 1])) : double(v[n / 2]);
    q.p999 = percentile(v, 0.999);
    q.p99 = percentile(v, 0.99);
    q.p95 = percentile(v, 0.95);
    q.p90 = percentile(v, 0.90);
    q.p75 = percentile(v, 0.75);
    q.p25 = percentile(v, 0.25);
    q.p10 = percentile(v, 0.10);
    q.p5 = percentile(v, 0.05);
    q.p1 = percentile(v, 0.01);
    q.p01 = percentile(v, 0.001);
    return q;
}

} // namespace

double percentile(const std::vector<float>& v, double fraction) {
    if (fraction <= 0) return v.front();
    if (fraction >= 1) return v.back();
    double p = fraction * double(v.size() - 1);
    const size_t ip = static_cast<size_t>(p);
    p -= double(ip);
    return (1 - p) * double(v[ip]) + p * double(v[std::min(ip + 1, v.size() - 1)]);
}

KldSummary summarize_kld(const KldSums& k) {
    KldSummary s;
    s.n_tokens = k.count;
    const ValueWithError log_ppl = mean_and_uncertainty(k.sum_nll, k.sum_nll2, k.count);
    const ValueWithError log_ppl_base = mean_and_uncertainty(k.sum_nll_base, k.sum_nll_base2, k.count);
    const double cov = covariance(k.sum_nll, k.sum_nll_base, k.sum_nll_nll_base, k.count);
    s.ppl = {std::exp(log_ppl.value), std::exp(log_ppl.value) * log_ppl.error};
    s.ppl_base = {std::exp(log_ppl_base.value), std::exp(log_ppl_base.value) * log_ppl_base.error};
    const double denom = log_ppl.error * log_ppl_base.error;
    s.cor_ln_ppl = denom > 0 ? cov / denom : 0.0;
    const double ratio_var = log_ppl.error * log_ppl.error + log_ppl_base.error * log_ppl_base.error - 2.0 * cov;
    s.ln_ppl_ratio = {log_ppl.value - log_ppl_base.value, std::sqrt(std::max(0.0, ratio_var))};
    s.ppl_ratio = {std::exp(s.ln_ppl_ratio.value), std::exp(s.ln_ppl_ratio.value) * s.ln_ppl_ratio.error};
    const double ppl_cov = s.ppl.value * s.ppl_base.value * cov;
    const double diff_var = s.ppl.error * s.ppl.error + s.ppl_base.error * s.ppl_base.error - 2.0 * ppl_cov;
    s.ppl_diff = {s.ppl.value - s.ppl_base.value, std::sqrt(std::max(0.0, diff_var))};
    s.kld = mean_and_uncertainty(k.sum_kld, k.sum_kld2, k.count);
    s.p_diff = mean_and_uncertainty(k.sum_p_diff, k.sum_p_diff2, k.count);
    const ValueWithError mse = mean_and_uncertainty(k.sum_p_diff2, k.sum_p_diff4, k.count);
    const double rms = std::sqrt(mse.value);
    s.p_diff_rms = {rms, rms > 0 ? 0.5 / rms * mse.error : 0.0};
    if (k.count > 0) {
        const double f = double(k.n_same_top) / double(k.count);
        s.same_top = {f, k.count > 1 ? std::sqrt(f * (1 - f) / double(k.count - 1)) : 0.0};
    }
    return s;
}

KldSummary summarize_kld(const KldSums& sums, std::vector<float> kld_values, std::vector<float> p_diff_values) {
    KldSummary s = summarize_kld(sums);
    s.kld_quantiles = quantiles(std::move(kld_values));
    s.p_diff_quantiles = quantiles(std::move(p_diff_values));
    return s;
}

Status check_base_tokens(const LogProbReader& base, std::span<const int32_t> tokens) {
    const auto want = base.tokens();
    const std::string where = "KL-divergence base file '" + base.path() + "'";
    for (size_t i = 0; i < want.size(); ++i) {
        if (i >= tokens.size())
            return make_error(ErrorCode::kBadInput, where + " holds " + std::to_string(want.size()) +
                                                        " tokens, but the text tokenizes to only " +
                                                        std::to_string(tokens.size()) + " (different text?)");
        if (tokens[i] != want[i])
            return make_error(ErrorCode::kBadInput, where + ": token " + std::to_string(i) + " is " +
                                                        std::to_string(want[i]) + " in the base but " +
                                                        std::to_string(tokens[i]) +
                                                        " in this text (different text or tokenizer)");
    }
    return ok_status();
}

Result<KldResult> compute_kl_divergence(runtime::LanguageModel& model, const LogProbReader& base, const KldOptions& o,
                                        const KldChunkCallback& on_chunk) {
    const LogProbFileHeader& h = base.header();
    const std::string where = "KL-divergence base file '" + base.path() + "'";
    if (h.n_vocab != model.n_vocab())
        return make_error(ErrorCode::kBadInput, where + " was written for a vocabulary of " +
                                                    std::to_string(h.n_vocab) + " tokens, but this model has " +
                                                    std::to_string(model.n_vocab()));
    if (h.bos_id != o.bos_id)
        return make_error(ErrorCode::kBadInput, where + " replaced each chunk's first token with BOS id " +
                                                    std::to_string(h.bos_id) + ", but this model's BOS is " +
                                                    std::to_string(o.bos_id) + " (different tokenizer?)");
    if (h.n_ctx > model.n_ctx())
        return make_error(ErrorCode::kBadInput, where + " uses chunks of " + std::to_string(h.n_ctx) +
                                                    " tokens, more than this model's maximum of " +
                                                    std::to_string(model.n_ctx()));
    LOWBIT_TRY(check_eval_options(model, h.n_ctx, o.n_batch));
    const int64_t n_chunks = o.n_chunks >= 0 ? std::min(o.n_chunks, h.n_chunk) : h.n_chunk;
    if (n_chunks < 1) return make_error(ErrorCode::kUsage, "--chunks 0 leaves nothing to evaluate");

    const int64_t n_ctx = h.n_ctx, first = h.first(), n_vocab = h.n_vocab;
    KldResult result;
    result.n_ctx = n_ctx;
    result.n_chunks = n_chunks;
    KldSums sums;
    std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
    std::vector<RowKld> rows_out;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t c = 0; c < n_chunks; ++c) {
        std::copy_n(base.tokens().begin() + c * n_ctx, n_ctx, chunk.begin());
        if (o.bos_id >= 0) chunk[0] = o.bos_id;
        auto on_rows = [&](int64_t pos0, std::span<const float> logits) -> Status {
            const int64_t n = static_cast<int64_t>(logits.size()) / n_vocab;
            const int64_t lo = std::max(pos0, first), hi = std::min(pos0 + n, n_ctx - 1);
            if (lo >= hi) return ok_status();
            rows_out.assign(size_t(hi - lo), RowKld{});
            ThreadPool::global().parallel_for(hi - lo, [&](int64_t b, int64_t e, int) {
                for (int64_t i = b; i < e; ++i) {
                    const int64_t p = lo + i;
                    rows_out[size_t(i)] = row_kld(logits.subspan(size_t((p - pos0) * n_vocab), size_t(n_vocab)),
                                                  base.row(c, p - first), chunk[size_t(p + 1)]);
                }
            });
            for (const RowKld& r : rows_out) {
                if (!std::isfinite(r.nll) || !std::isfinite(r.kld))
                    return make_error(ErrorCode::kInternal, "non-finite logits in chunk " + std::to_string(c + 1));
                add(sums, r);
                result.kld_values.push_back(static_cast<float>(r.kld));
                result.p_diff_values.push_back(static_cast<float>(r.p_diff));
            }
            return ok_status();
        };
        LOWBIT_TRY(eval_in_batches(model, chunk, o.n_batch, on_rows));
        if (on_chunk) on_chunk(KldChunkReport{c, n_chunks, summarize_kld(sums)});
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result.summary = summarize_kld(sums, result.kld_values, result.p_diff_values);
    return result;
}

} // namespace lowbit::pipeline
