// SPDX-License-Identifier: MIT
// Generation loop and its timing report (see generate.h).
#include "runtime/generate/generate.h"

#include <chrono>
#include <cmath>
#include <fmt/format.h>

namespace lowbit::runtime {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Prefills the prompt and leaves the logits of its last token in `logits`.
Status prefill(LanguageModel& model, std::span<const int32_t> prompt, int64_t n_batch, std::vector<float>& logits) {
    const int64_t n = static_cast<int64_t>(prompt.size());
    for (int64_t pos = 0; pos < n; pos += n_batch) {
        const int64_t len = std::min(n_batch, n - pos);
        LOWBIT_TRY(model.eval(prompt.subspan(size_t(pos), size_t(len)), /*all_logits=*/false, logits));
    }
    return ok_status();
}

// NaN or +Inf anywhere, or no finite logit at all, leaves nothing to sample from (issue #15: a model with
// non-finite weights used to "generate" an empty text and exit 0).
Status check_logits(const LanguageModel& model, const std::vector<float>& logits, const std::string& after) {
    bool any_finite = false;
    for (size_t i = 0; i < logits.size(); ++i) {
        const float x = logits[i];
        if (std::isnan(x) || x == INFINITY) {
            const std::string cause = model.explain_non_finite();
            return make_error(ErrorCode::kBadInput,
                              fmt::format("the model's logits are not finite after {} (token id {} has logit {}), so "
                                          "no token can be sampled and nothing is generated: {}",
                                          after, i, x,
                                          cause.empty() ? std::string("every weight lowbit can check is finite, so "
                                                                      "the activations overflowed")
                                                        : cause + " (re-create the model from finite weights)"));
        }
        any_finite = any_finite || std::isfinite(x);
    }
    if (!any_finite && !logits.empty())
        return make_error(ErrorCode::kBadInput,
                          fmt::format("the model's logits are all -inf after {}, so no token can be sampled", after));
    return ok_status();
}

} // namespace

const char* stop_reason_name(StopReason reason) {
    switch (reason) {
    case StopReason::kPromptOnly:
        return "prompt only";
    case StopReason::kLength:
        return "length";
    case StopReason::kEndOfGeneration:
        return "end of generation";
    case StopReason::kContextFull:
        return "context full";
    }
    return "?";
}

std::vector<int32_t> tokenize_prompt(const tokenizer::Tokenizer& tok, std::string_view text, bool add_special) {
    return tok.encode(text, add_special, /*parse_special=*/true);
}

Result<GenerateResult> generate(LanguageModel& model, const tokenizer::Tokenizer& tok, std::span<const int32_t> prompt,
                                Sampler& sampler, const GenerateOptions& o, const PieceCallback& on_piece) {
    if (o.n_batch < 1)
        return make_error(ErrorCode::kUsage, "batch size must be >= 1, got " + std::to_string(o.n_batch));
    if (prompt.empty()) return make_error(ErrorCode::kUsage, "the prompt is empty (0 tokens)");
    const int64_t n_prompt = static_cast<int64_t>(prompt.size());
    if (n_prompt > model.n_ctx())
        return make_error(ErrorCode::kUsage, "the prompt has " + std::to_string(n_prompt) +
                                                 " tokens but the context holds only " + std::to_string(model.n_ctx()) +
                                                 " (raise -c or shorten the prompt)");
    GenerateResult r;
    std::vector<float> logits;
    model.truncate(0);
    auto t0 = Clock::now();
    LOWBIT_TRY(prefill(model, prompt, o.n_batch, logits));
    r.timings.prompt_ms = ms_since(t0);
    if (o.n_predict != 0) LOWBIT_TRY(check_logits(model, logits, fmt::format("the prompt ({} tokens)", n_prompt)));
    r.timings.n_prompt_tokens = n_prompt;
    sampler.reset(); // the repeat-penalty history is this prompt's, not a previous generation's
    for (int32_t t : prompt) sampler.accept(t);
    if (o.n_predict == 0) return r;

    tokenizer::Detokenizer detok(tok, /*special=*/false);
    auto emit = [&](const std::string& piece) {
        if (piece.empty()) return;
        r.text += piece;
        if (on_piece) on_piece(piece);
    };
    while (true) {
        t0 = Clock::now();
        const int32_t id = sampler.sample(logits);
        r.timings.sample_ms += ms_since(t0);
        ++r.timings.n_sampled;
        sampler.accept(id);
        if (tok.is_eog(id)) {
            r.stop = StopReason::kEndOfGeneration;
            break;
        }
        r.tokens.push_back(id);
        emit(detok.push(id));
        if (o.n_predict > 0 && static_cast<int64_t>(r.tokens.size()) >= o.n_predict) {
            r.stop = StopReason::kLength;
            break;
        }
        if (model.n_past() >= model.n_ctx()) {
            r.stop = StopReason::kContextFull;
            break;
        }
        t0 = Clock::now();
        const int32_t one[1] = {id};
        LOWBIT_TRY(model.eval(one, /*all_logits=*/false, logits));
        r.timings.eval_ms += ms_since(t0);
        ++r.timings.n_eval;
        LOWBIT_TRY(check_logits(model, logits, fmt::format("generated token {}", r.tokens.size())));
    }
    emit(detok.flush());
    return r;
}

std::string format_timings(const GenerateTimings& t, double load_ms) {
    auto per = [](double ms, int64_t n) {
        if (n <= 0) return std::string("");
        return fmt::format(" ({:8.2f} ms per token, {:8.2f} tokens per second)", ms / double(n),
                           ms > 0 ? 1e3 * double(n) / ms : 0.0);
    };
    std::string s;
    s += fmt::format("       load time = {:10.2f} ms\n", load_ms);
    s += fmt::format("prompt eval time = {:10.2f} ms / {:5d} tokens{}\n", t.prompt_ms, t.n_prompt_tokens,
                     per(t.prompt_ms, t.n_prompt_tokens));
    s +=
        fmt::format("       eval time = {:10.2f} ms / {:5d} runs  {}\n", t.eval_ms, t.n_eval, per(t.eval_ms, t.n_eval));
    s += fmt::format("   sampling time = {:10.2f} ms / {:5d} runs  {}\n", t.sample_ms, t.n_sampled,
                     per(t.sample_ms, t.n_sampled));
    s += fmt::format("      total time = {:10.2f} ms / {:5d} tokens\n", load_ms + t.prompt_ms + t.eval_ms + t.sample_ms,
                     t.n_prompt_tokens + t.n_eval);
    return s;
}

} // namespace lowbit::runtime
