// SPDX-License-Identifier: MIT
// Perplexity protocols (see perplexity.h). Per-row log-softmax runs on the global thread pool; sums are
// accumulated in row order so results do not depend on the thread count.
#include "pipeline/perplexity/perplexity.h"

#include "core/thread_pool.h"
#include "pipeline/perplexity/log_softmax.h"
#include "pipeline/perplexity/logprob_file.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

namespace lowbit::pipeline {

namespace {

struct NllSums {
    double nll = 0, nll2 = 0;
    int64_t count = 0;
    double ppl() const { return std::exp(nll / double(count)); }
};

// NLL of targets[i] under rows [i] of `logits` ([n, n_vocab]) for i in [0, n), added in order to `sums`.
Status score_rows(std::span<const float> logits, int64_t n_vocab, std::span<const int32_t> targets, NllSums& sums,
                  int64_t first_position) {
    const int64_t n = static_cast<int64_t>(targets.size());
    std::vector<double> nll(static_cast<size_t>(n));
    ThreadPool::global().parallel_for(n, [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i)
            nll[size_t(i)] = row_nll(logits.subspan(size_t(i * n_vocab), size_t(n_vocab)), targets[size_t(i)]);
    });
    for (int64_t i = 0; i < n; ++i) {
        const double v = nll[size_t(i)];
        if (!std::isfinite(v))
            return make_error(ErrorCode::kInternal,
                              "the model produced non-finite logits at position " + std::to_string(first_position + i));
        sums.nll += v;
        sums.nll2 += v * v;
        ++sums.count;
    }
    return ok_status();
}

void finish(const NllSums& s, PerplexityResult& r) {
    r.n_scored = s.count;
    r.mean_nll = s.nll / double(s.count);
    r.ppl = std::exp(r.mean_nll);
    double var = s.nll2 / double(s.count) - r.mean_nll * r.mean_nll;
    r.ppl_stderr = (var > 0 && s.count > 1) ? std::sqrt(var / double(s.count - 1)) * r.ppl : 0.0;
}

Status check_tokens(std::span<const int32_t> tokens, int64_t n_vocab) {
    for (size_t i = 0; i < tokens.size(); ++i)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return make_error(ErrorCode::kBadInput,
                              "token " + std::to_string(i) + " has id " + std::to_string(tokens[i]) +
                                  ", outside the model's vocabulary of " + std::to_string(n_vocab));
    return ok_status();
}

// Chunked protocol: chunk c covers tokens [c*n_ctx, (c+1)*n_ctx).
Status run_chunked(runtime::LanguageModel& model, std::span<const int32_t> tokens, const PerplexityOptions& o,
                   int64_t n_chunks, const ChunkCallback& on_chunk, LogProbWriter* base_out, NllSums& sums,
                   PerplexityResult& result) {
    const int64_t n_ctx = o.n_ctx, first = n_ctx / 2, n_vocab = model.n_vocab();
    std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
    for (int64_t c = 0; c < n_chunks; ++c) {
        std::copy_n(tokens.begin() + c * n_ctx, n_ctx, chunk.begin());
        if (o.bos_id >= 0) chunk[0] = o.bos_id;
        auto on_rows = [&](int64_t pos0, std::span<const float> logits) -> Status {
            // Scored rows: positions [first, n_ctx - 1), each predicting the token after it.
            const int64_t n = static_cast<int64_t>(logits.size()) / n_vocab;
            const int64_t lo = std::max(pos0, first), hi = std::min(pos0 + n, n_ctx - 1);
            if (lo >= hi) return ok_status();
            const auto rows = logits.subspan(size_t((lo - pos0) * n_vocab), size_t((hi - lo) * n_vocab));
            const std::span<const int32_t> targets(chunk.data() + lo + 1, size_t(hi - lo));
            LOWBIT_TRY(score_rows(rows, n_vocab, targets, sums, c * n_ctx + lo + 1));
            if (base_out) LOWBIT_TRY(base_out->write_rows(rows));
            return ok_status();
        };
        LOWBIT_TRY(eval_in_batches(model, chunk, o.n_batch, on_rows));
        result.running_ppl.push_back(sums.ppl());
        if (on_chunk) on_chunk(ChunkReport{c, n_chunks, sums.ppl()});
    }
    return ok_status();
}

// Strided protocol: window w covers [w*stride, min(w*stride + n_ctx, n)); scores what earlier windows did not.
Status run_strided(runtime::LanguageModel& model, std::span<const int32_t> tokens, const PerplexityOptions& o,
                   int64_t n_chunks, const ChunkCallback& on_chunk, NllSums& sums, PerplexityResult& result) {
    const int64_t n_tokens = static_cast<int64_t>(tokens.size()), n_vocab = model.n_vocab();
    int64_t prev_end = 0;
    for (int64_t w = 0; w < n_chunks; ++w) {
        const int64_t begin = w * o.stride, end = std::min(begin + o.n_ctx, n_tokens);
        const int64_t len = end - begin, trg_len = end - prev_end;
        const int64_t k0 = std::max<int64_t>(len - trg_len, 1); // first scored window index (needs a predecessor)
        const auto window = tokens.subspan(size_t(begin), size_t(len));
        auto on_rows = [&](int64_t pos0, std::span<const float> logits) -> Status {
            // Row p predicts window[p + 1]; scored rows are p in [k0 - 1, len - 1).
            const int64_t n = static_cast<int64_t>(logits.size()) / n_vocab;
            const int64_t lo = std::max(pos0, k0 - 1), hi = std::min(pos0 + n, len - 1);
            if (lo >= hi) return ok_status();
            const auto rows = logits.subspan(size_t((lo - pos0) * n_vocab), size_t((hi - lo) * n_vocab));
            return score_rows(rows, n_vocab, window.subspan(size_t(lo + 1), size_t(hi - lo)), sums, begin + lo + 1);
        };
        LOWBIT_TRY(eval_in_batches(model, window, o.n_batch, on_rows));
        prev_end = end;
        result.running_ppl.push_back(sums.ppl());
        if (on_chunk) on_chunk(ChunkReport{w, n_chunks, sums.ppl()});
    }
    return ok_status();
}

} // namespace

Status check_eval_options(const runtime::LanguageModel& model, int64_t n_ctx, int64_t n_batch) {
    if (n_ctx < 3)
        return make_error(ErrorCode::kUsage, "context size " + std::to_string(n_ctx) + " is too small (need >= 3)");
    if (n_ctx > model.n_ctx())
        return make_error(ErrorCode::kUsage, "context size " + std::to_string(n_ctx) +
                                                 " exceeds the model's maximum of " + std::to_string(model.n_ctx()) +
                                                 " positions");
    if (n_batch < 1) return make_error(ErrorCode::kUsage, "batch size must be >= 1, got " + std::to_string(n_batch));
    return ok_status();
}

Status eval_in_batches(runtime::LanguageModel& model, std::span<const int32_t> tokens, int64_t n_batch,
                       const std::function<Status(int64_t, std::span<const float>)>& on_rows) {
    model.truncate(0);
    std::vector<float> logits;
    const int64_t n = static_cast<int64_t>(tokens.size());
    for (int64_t pos = 0; pos < n; pos += n_batch) {
        const int64_t len = std::min(n_batch, n - pos);
        LOWBIT_TRY(model.eval(tokens.subspan(size_t(pos), size_t(len)), /*all_logits=*/true, logits));
        if (static_cast<int64_t>(logits.size()) != len * model.n_vocab())
            return make_error(ErrorCode::kInternal, "model returned " + std::to_string(logits.size()) + " logits for " +
                                                        std::to_string(len) + " tokens");
        LOWBIT_TRY(on_rows(pos, logits));
    }
    return ok_status();
}

int64_t count_chunks(int64_t n_tokens, const PerplexityOptions& o) {
    if (o.stride <= 0) return o.n_ctx > 0 ? n_tokens / o.n_ctx : 0;
    if (n_tokens < 2) return 0;
    if (n_tokens <= o.n_ctx) return 1;
    return (n_tokens - o.n_ctx + o.stride - 1) / o.stride + 1;
}

Result<PerplexityResult> compute_perplexity(runtime::LanguageModel& model, std::span<const int32_t> tokens,
                                            const PerplexityOptions& o, const ChunkCallback& on_chunk,
                                            LogProbWriter* base_out) {
    LOWBIT_TRY(check_eval_options(model, o.n_ctx, o.n_batch));
    if (o.stride < 0) return make_error(ErrorCode::kUsage, "--stride must be >= 0, got " + std::to_string(o.stride));
    if (o.stride > o.n_ctx)
        return make_error(ErrorCode::kUsage, "--stride " + std::to_string(o.stride) +
                                                 " is larger than the context size " + std::to_string(o.n_ctx));
    if (o.stride > 0 && base_out)
        return make_error(ErrorCode::kUsage, "KL-divergence base files use the chunked protocol; drop --stride");
    if (o.bos_id >= model.n_vocab()) return make_error(ErrorCode::kInternal, "BOS id outside the vocabulary");
    LOWBIT_TRY(check_tokens(tokens, model.n_vocab()));
    const int64_t n_tokens = static_cast<int64_t>(tokens.size());
    if (n_tokens == 0) return make_error(ErrorCode::kBadInput, "the text is empty (0 tokens)");
    if (o.stride == 0 && n_tokens < 2 * o.n_ctx)
        return make_error(ErrorCode::kBadInput, "you need at least " + std::to_string(2 * o.n_ctx) +
                                                    " tokens to evaluate perplexity with a context of " +
                                                    std::to_string(o.n_ctx) + "; the text tokenizes to only " +
                                                    std::to_string(n_tokens) + " tokens (use a smaller -c)");
    if (o.stride > 0 && n_tokens < 2)
        return make_error(ErrorCode::kBadInput, "the text tokenizes to " + std::to_string(n_tokens) +
                                                    " token(s); at least 2 are needed to score one");
    int64_t n_chunks = count_chunks(n_tokens, o);
    if (o.n_chunks >= 0) n_chunks = std::min(n_chunks, o.n_chunks);
    if (n_chunks < 1) return make_error(ErrorCode::kUsage, "--chunks 0 leaves nothing to evaluate");
    if (base_out && (base_out->header().n_chunk != n_chunks || base_out->header().n_ctx != o.n_ctx))
        return make_error(ErrorCode::kInternal, "log-prob writer header does not match the evaluation");

    PerplexityResult result;
    result.n_tokens = n_tokens;
    result.n_ctx = o.n_ctx;
    result.stride = o.stride;
    result.n_chunks = n_chunks;
    NllSums sums;
    const auto t0 = std::chrono::steady_clock::now();
    if (o.stride == 0) {
        LOWBIT_TRY(run_chunked(model, tokens, o, n_chunks, on_chunk, base_out, sums, result));
    } else {
        LOWBIT_TRY(run_strided(model, tokens, o, n_chunks, on_chunk, sums, result));
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    finish(sums, result);
    return result;
}

} // namespace lowbit::pipeline
