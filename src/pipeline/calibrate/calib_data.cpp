// SPDX-License-Identifier: MIT
// Calibration samples: seeded random windows of a tokenized text file, or self-generated text.
#include "pipeline/calibrate/calib_data.h"

#include "core/checked.h"
#include "core/file.h"
#include "core/log.h"
#include "runtime/sampler/sampler.h"
#include "runtime/tokenizer/unicode.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>

namespace lowbit::pipeline {
namespace {

Status check_sizes(const CalibOptions& o, int64_t n_ctx) {
    if (o.n_samples < 1)
        return make_error(ErrorCode::kUsage, "--nsamples must be >= 1, got " + std::to_string(o.n_samples));
    if (o.seqlen < 1) return make_error(ErrorCode::kUsage, "--seqlen must be >= 1, got " + std::to_string(o.seqlen));
    if (n_ctx > 0 && o.seqlen > n_ctx)
        return make_error(ErrorCode::kUsage, "--seqlen " + std::to_string(o.seqlen) +
                                                 " is longer than the model context (" + std::to_string(n_ctx) + ")");
    return {};
}

} // namespace

Result<CalibSamples> sample_windows(const std::vector<int32_t>& tokens, const CalibOptions& o,
                                    const std::string& label) {
    LOWBIT_TRY(check_sizes(o, 0));
    const int64_t n = int64_t(tokens.size());
    if (n == 0) return make_error(ErrorCode::kBadInput, "calibration file '" + label + "' has no tokens (empty file?)");
    const auto need = checked_mul(uint64_t(o.n_samples), uint64_t(o.seqlen));
    if (!need || uint64_t(n) < *need)
        return make_error(ErrorCode::kBadInput, "calibration file '" + label + "' has " + std::to_string(n) +
                                                    " tokens, fewer than " + std::to_string(o.n_samples) +
                                                    " samples x " + std::to_string(o.seqlen) + " tokens" +
                                                    (need ? " = " + std::to_string(*need) : std::string()) +
                                                    " (lower --nsamples or --seqlen)");
    std::mt19937_64 rng(o.seed);
    std::uniform_int_distribution<int64_t> start(0, n - o.seqlen);
    CalibSamples out(size_t(o.n_samples));
    for (auto& s : out) {
        const int64_t b = start(rng);
        s.assign(tokens.begin() + b, tokens.begin() + b + o.seqlen);
    }
    return out;
}

Result<CalibSamples> generate_calib_samples(runtime::Session& session, const CalibOptions& o) {
    LOWBIT_TRY(check_sizes(o, session.n_ctx()));
    const auto* tok = session.tokenizer();
    if (!tok || tok->bos_id() < 0)
        return make_error(ErrorCode::kBadInput,
                          "--calib self needs a tokenizer with a BOS token; model '" + session.path() + "' has none");
    CalibSamples out(size_t(o.n_samples));
    std::vector<float> logits;
    const float neg_inf = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < o.n_samples; ++i) {
        runtime::SamplerOptions so;
        so.temp = 1.0f, so.top_k = 0, so.top_p = 1.0f, so.min_p = 0.0f, so.seed = o.seed + uint64_t(i);
        runtime::Sampler sampler(so);
        auto& s = out[size_t(i)];
        s.push_back(tok->bos_id());
        session.truncate(0);
        int32_t next = s.back();
        while (int64_t(s.size()) < o.seqlen) {
            LOWBIT_TRY(session.eval(std::span<const int32_t>(&next, 1), false, logits));
            for (int32_t id = 0; id < int32_t(logits.size()); ++id)
                if (tok->is_eog(id) || id == tok->bos_id()) logits[size_t(id)] = neg_inf;
            next = sampler.sample(logits);
            s.push_back(next);
        }
        session.truncate(0);
    }
    return out;
}

std::vector<int32_t> random_calib_vocab(const tokenizer::Tokenizer* tok, int64_t n_vocab) {
    std::vector<int32_t> ids;
    if (!tok) {
        for (int64_t id = 0; id < n_vocab; ++id) ids.push_back(int32_t(id));
        return ids;
    }
    for (int32_t id = 0; id < tok->n_vocab() && id < n_vocab; ++id) {
        const auto type = tok->token_type(id);
        if (type != format::TokenType::kNormal && type != format::TokenType::kByte) continue;
        if (id == tok->bos_id() || id == tok->eos_id() || tok->is_eog(id)) continue;
        ids.push_back(id);
    }
    return ids;
}

Result<CalibSamples> random_samples(const std::vector<int32_t>& allowed, const CalibOptions& o) {
    LOWBIT_TRY(check_sizes(o, 0));
    if (allowed.empty())
        return make_error(ErrorCode::kBadInput, "--calib random: the vocabulary has no normal tokens to draw from");
    std::mt19937_64 rng(o.seed);
    std::uniform_int_distribution<size_t> pick(0, allowed.size() - 1);
    CalibSamples out(size_t(o.n_samples), std::vector<int32_t>(size_t(o.seqlen)));
    for (auto& s : out)
        for (auto& t : s) t = allowed[pick(rng)];
    return out;
}

int64_t calib_session_ctx(const CalibOptions& o) {
    return o.source == "self" ? std::max<int64_t>(o.seqlen, 1) : 1;
}

Status check_calib_memory(const CalibOptions& o, int64_t hidden_size, uint64_t limit) {
    LOWBIT_TRY(check_sizes(o, 0));
    if (hidden_size < 1) return ok_status();
    const auto floats = checked_product({uint64_t(o.n_samples), uint64_t(o.seqlen), uint64_t(hidden_size)});
    const auto bytes = floats ? checked_mul(*floats, sizeof(float)) : std::nullopt;
    const std::string what = fmt::format("the f32 hidden states of {} samples x {} tokens x {} values, kept for every "
                                         "layer",
                                         o.n_samples, o.seqlen, hidden_size);
    if (!bytes) return make_error(ErrorCode::kOutOfMemory, "the calibration size overflows (" + what + ")");
    if (*bytes > limit)
        return make_error(
            ErrorCode::kOutOfMemory,
            fmt::format("calibration needs at least {:.2f} GiB ({}), more than the {:.2f} GiB of physical "
                        "memory; lower --nsamples or --seqlen",
                        double(*bytes) / double(1ull << 30), what, double(limit) / double(1ull << 30)));
    return ok_status();
}

Result<CalibSamples> load_calib_samples(runtime::Session& session, const CalibOptions& o) {
    if (o.source.empty())
        return make_error(ErrorCode::kUsage,
                          "calibration data is required: --calib FILE (text), --calib self or --calib random");
    LOWBIT_TRY(check_calib_memory(o, session.config().hidden_size, physical_memory_bytes()));
    if (o.source == "self") return generate_calib_samples(session, o);
    const int64_t max_pos = session.config().max_position_embeddings;
    const int64_t n_ctx = max_pos > 0 ? max_pos : session.n_ctx(); // the model's context, not the KV cache's
    if (o.source == "random") {
        LOWBIT_TRY(check_sizes(o, n_ctx));
        if (!session.tokenizer())
            log_warn("--calib random: model '{}' has no tokenizer; drawing from all {} ids", session.path(),
                     session.n_vocab());
        const auto allowed = random_calib_vocab(session.tokenizer(), session.n_vocab());
        log_info("calibration: {} x {} random tokens (seed {}) from {} of {} ids", o.n_samples, o.seqlen, o.seed,
                 allowed.size(), session.n_vocab());
        return random_samples(allowed, o);
    }
    LOWBIT_TRY(check_sizes(o, n_ctx));
    std::error_code ec;
    if (!std::filesystem::is_regular_file(o.source, ec))
        return make_error(ErrorCode::kIo, "calibration file '" + o.source + "' does not exist or is not a file");
    LOWBIT_ASSIGN_OR_RETURN(std::string text, read_file_to_string(o.source));
    if (text.empty()) return make_error(ErrorCode::kBadInput, "calibration file '" + o.source + "' is empty");
    LOWBIT_TRY(tokenizer::check_utf8_text(text, "calibration file '" + o.source + "'"));
    const auto* tok = session.tokenizer();
    if (!tok)
        return make_error(ErrorCode::kBadInput,
                          "model '" + session.path() + "' has no tokenizer to tokenize the calibration text");
    const std::vector<int32_t> tokens = tok->encode(text, false, false);
    log_info("calibration: {} tokens from '{}'", tokens.size(), o.source);
    return sample_windows(tokens, o, o.source);
}

} // namespace lowbit::pipeline
