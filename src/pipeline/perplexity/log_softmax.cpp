// SPDX-License-Identifier: MIT
// Log-softmax in double and the uint16 row packing (see log_softmax.h).
#include "pipeline/perplexity/log_softmax.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lowbit::pipeline {

RowStats row_stats(std::span<const float> logits) {
    RowStats s;
    if (logits.empty()) return s;
    s.max_logit = logits[0];
    for (size_t i = 1; i < logits.size(); ++i) {
        if (logits[i] > s.max_logit) {
            s.max_logit = logits[i];
            s.argmax = static_cast<int32_t>(i);
        }
    }
    double sum = 0.0;
    for (float l : logits) sum += std::exp(double(l) - double(s.max_logit));
    s.log_sum_exp = std::log(sum);
    return s;
}

double row_nll(std::span<const float> logits, int32_t token) {
    const RowStats s = row_stats(logits);
    return double(s.max_logit) + s.log_sum_exp - double(logits[static_cast<size_t>(token)]);
}

void pack_log_probs(std::span<const float> logits, uint16_t* row) {
    const RowStats s = row_stats(logits);
    float min_logit = s.max_logit;
    for (float l : logits) min_logit = std::min(min_logit, l);
    min_logit = std::max(min_logit, s.max_logit - kLogProbFloor);
    const float scale = (s.max_logit - min_logit) / 65535.0f;
    const float min_log_prob = static_cast<float>(double(min_logit) - double(s.max_logit) - s.log_sum_exp);
    std::memcpy(row, &scale, sizeof(float));
    std::memcpy(row + 2, &min_log_prob, sizeof(float));
    uint16_t* q = row + 4;
    const size_t n_slots = static_cast<size_t>(packed_row_u16(static_cast<int64_t>(logits.size())) - 4);
    std::memset(q, 0, n_slots * sizeof(uint16_t));
    if (scale == 0.0f) return; // all logits equal: every code 0, log p = min_log_prob = -log(n_vocab)
    const float inv_scale = 1.0f / scale;
    for (size_t i = 0; i < logits.size(); ++i) {
        if (!(logits[i] > min_logit)) continue;
        const long v = std::lround(inv_scale * (logits[i] - min_logit));
        q[i] = static_cast<uint16_t>(std::clamp<long>(v, 0, 65535));
    }
}

PackedRowHeader packed_row_header(const uint16_t* row) {
    PackedRowHeader h;
    std::memcpy(&h.scale, row, sizeof(float));
    std::memcpy(&h.min_log_prob, row + 2, sizeof(float));
    return h;
}

} // namespace lowbit::pipeline
