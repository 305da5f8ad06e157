// SPDX-License-Identifier: MIT
// Sampler chain (see sampler.h). Filters follow llama.cpp's src/llama-sampling.cpp semantics: top-p and
// min-p look at the softmax of the logits *before* temperature, which is applied last.
#include "runtime/sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_set>

namespace lowbit::runtime {

namespace {
// Candidate order everywhere: higher logit first, ties broken by the lower id (deterministic).
bool by_logit_desc(const Candidate& a, const Candidate& b) {
    return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
}
} // namespace

Status validate(const SamplerOptions& o) {
    auto bad = [](const std::string& what) { return make_error(ErrorCode::kUsage, what); };
    if (!std::isfinite(o.temp)) return bad("--temp must be a finite number");
    if (!(o.top_p >= 0.0f && o.top_p <= 1.0f)) return bad("--top-p must be in [0, 1], got " + std::to_string(o.top_p));
    if (!(o.min_p >= 0.0f && o.min_p <= 1.0f)) return bad("--min-p must be in [0, 1], got " + std::to_string(o.min_p));
    if (!(o.repeat_penalty > 0.0f) || !std::isfinite(o.repeat_penalty))
        return bad("--repeat-penalty must be > 0, got " + std::to_string(o.repeat_penalty));
    if (o.top_k < 0) return bad("--top-k must be >= 0 (0 = off), got " + std::to_string(o.top_k));
    if (o.repeat_last_n < -1)
        return bad("--repeat-last-n must be >= -1 (-1 = whole context), got " + std::to_string(o.repeat_last_n));
    return ok_status();
}

std::vector<Candidate> make_candidates(std::span<const float> logits) {
    std::vector<Candidate> cands(logits.size());
    // NaN would break the sort's ordering (undefined behavior); treat it as impossible.
    for (size_t i = 0; i < logits.size(); ++i)
        cands[i] = Candidate{static_cast<int32_t>(i), std::isnan(logits[i]) ? -INFINITY : logits[i], 0.0f};
    return cands;
}

void sort_candidates(std::vector<Candidate>& cands) {
    std::sort(cands.begin(), cands.end(), by_logit_desc);
}

void softmax_candidates(std::vector<Candidate>& cands) {
    if (cands.empty()) return;
    sort_candidates(cands);
    const float max_logit = cands.front().logit;
    double sum = 0.0;
    for (auto& c : cands) {
        c.p = std::exp(c.logit - max_logit);
        sum += c.p;
    }
    for (auto& c : cands) c.p = static_cast<float>(c.p / sum);
}

void apply_repeat_penalty(std::vector<Candidate>& cands, std::span<const int32_t> history, float penalty) {
    if (penalty == 1.0f || history.empty()) return;
    const std::unordered_set<int32_t> seen(history.begin(), history.end());
    for (auto& c : cands) {
        if (!seen.count(c.id)) continue;
        c.logit = c.logit > 0.0f ? c.logit / penalty : c.logit * penalty;
    }
}

void apply_top_k(std::vector<Candidate>& cands, int32_t k) {
    if (k <= 0 || static_cast<size_t>(k) >= cands.size()) {
        sort_candidates(cands);
        return;
    }
    // partial_sort: O(n log k) instead of sorting the whole vocabulary for every token.
    std::partial_sort(cands.begin(), cands.begin() + k, cands.end(), by_logit_desc);
    cands.resize(static_cast<size_t>(k));
}

void apply_top_p(std::vector<Candidate>& cands, float p, size_t min_keep) {
    if (p >= 1.0f || cands.empty()) return;
    softmax_candidates(cands);
    double cum = 0.0;
    size_t keep = cands.size();
    for (size_t i = 0; i < cands.size(); ++i) {
        cum += cands[i].p;
        if (cum >= p && i + 1 >= min_keep) {
            keep = i + 1;
            break;
        }
    }
    cands.resize(keep);
}

void apply_min_p(std::vector<Candidate>& cands, float min_p, size_t min_keep) {
    if (min_p <= 0.0f || cands.empty()) return;
    sort_candidates(cands);
    const float min_logit = cands.front().logit + std::log(min_p);
    size_t keep = 0;
    while (keep < cands.size() && cands[keep].logit >= min_logit) ++keep;
    cands.resize(std::max(keep, std::min(min_keep, cands.size())));
}

void apply_temperature(std::vector<Candidate>& cands, float temp) {
    if (cands.empty()) return;
    if (temp <= 0.0f) {
        const auto best = std::min_element(cands.begin(), cands.end(), by_logit_desc);
        const Candidate keep = *best;
        cands.assign(1, keep);
        return;
    }
    for (auto& c : cands) c.logit /= temp;
}

Sampler::Sampler(SamplerOptions options) : options_(options), rng_(options.seed) {}

void Sampler::accept(int32_t token) {
    if (options_.repeat_last_n == 0) return;
    history_.push_back(token);
    if (options_.repeat_last_n > 0 && history_.size() > static_cast<size_t>(options_.repeat_last_n))
        history_.pop_front();
}

void Sampler::reset() {
    history_.clear();
}

int32_t Sampler::sample(std::span<const float> logits) {
    std::vector<Candidate> cands = make_candidates(logits);
    history_copy_.assign(history_.begin(), history_.end());
    apply_repeat_penalty(cands, history_copy_, options_.repeat_penalty);
    if (options_.temp <= 0.0f) {
        apply_temperature(cands, options_.temp); // argmax
        return cands.front().id;
    }
    apply_top_k(cands, options_.top_k);
    apply_top_p(cands, options_.top_p);
    apply_min_p(cands, options_.min_p);
    apply_temperature(cands, options_.temp);
    softmax_candidates(cands);
    // Inverse-CDF draw in double: u in [0, 1) against the running sum of the sorted probabilities.
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    double cum = 0.0;
    for (const auto& c : cands) {
        cum += c.p;
        if (u < cum) return c.id;
    }
    return cands.back().id; // rounding left u above the total
}

} // namespace lowbit::runtime
