// SPDX-License-Identifier: MIT
// Log-softmax helpers shared by perplexity and KL divergence, and the uint16 packing of one row of
// log-probabilities used by the stored base file (idea from llama.cpp's perplexity tool: per row a scale and
// an offset, then one uint16 per vocabulary entry, clamped 16 nats below the maximum).
#pragma once

#include <cstdint>
#include <span>

namespace lowbit::pipeline {

// Log-probabilities closer than this to zero probability are clamped (they are all stored as code 0).
inline constexpr float kLogProbFloor = 16.0f;

struct RowStats {
    float max_logit = 0.0f;
    int32_t argmax = 0;     // first index of the maximum
    double log_sum_exp = 0; // log(sum(exp(logit - max_logit)))
};

// One pass for the max (and argmax), one for the sum of exponentials, in double.
RowStats row_stats(std::span<const float> logits);

// Negative log-likelihood of `token` under softmax(logits), in double.
double row_nll(std::span<const float> logits, int32_t token);

// Number of uint16 slots of a packed row: 4 (f32 scale, f32 min_log_prob) + n_vocab rounded up to even,
// so consecutive rows stay 4-byte aligned.
inline int64_t packed_row_u16(int64_t n_vocab) {
    return 4 + 2 * ((n_vocab + 1) / 2);
}

// Packs log_softmax(logits) into `row` [packed_row_u16(n_vocab)]:
//   min = max(min_logit, max_logit - 16); scale = (max_logit - min) / 65535;
//   min_log_prob = min - max_logit - log_sum_exp; q[i] = logit > min ? round((logit - min) / scale) : 0,
// so that log p[i] ~= scale * q[i] + min_log_prob, with error <= scale / 2 for entries above the clamp.
void pack_log_probs(std::span<const float> logits, uint16_t* row);

// Reads back the two floats of a packed row.
struct PackedRowHeader {
    float scale = 0.0f;
    float min_log_prob = 0.0f;
};
PackedRowHeader packed_row_header(const uint16_t* row);
inline const uint16_t* packed_row_codes(const uint16_t* row) {
    return row + 4;
}

} // namespace lowbit::pipeline
