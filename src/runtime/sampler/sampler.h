// SPDX-License-Identifier: MIT
// Sampler: llama.cpp-style chain that turns one row of logits into a token id:
//   repeat penalty -> top-k -> top-p -> min-p -> temperature -> seeded draw   (temp <= 0: argmax, no draw).
// Goals: the same survivors as llama.cpp's samplers for the same logits, reproducible draws for a seed.
// Non-goals: grammar, mirostat, DRY, XTC, logit bias.
#pragma once

#include "core/error.h"

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <vector>

namespace lowbit::runtime {

struct SamplerOptions {
    float temp = 0.8f;           // <= 0: greedy (argmax after the repeat penalty)
    int32_t top_k = 40;          // 0: disabled (negative: a usage error)
    float top_p = 0.95f;         // >= 1: disabled
    float min_p = 0.05f;         // <= 0: disabled
    float repeat_penalty = 1.0f; // 1: disabled
    int32_t repeat_last_n = 64;  // history window of the repeat penalty; 0 disables it, -1 = unbounded
    uint64_t seed = 0;
};

// kUsage if a field is out of range (names the flag-like field and the value).
Status validate(const SamplerOptions& options);

// One candidate token. `p` is valid only after softmax_candidates().
struct Candidate {
    int32_t id = 0;
    float logit = 0.0f;
    float p = 0.0f;
};

// The chain's stages, public so tests can check each filter's survivors on fixed logits.
// All of them keep the candidates sorted by logit, descending (ties: lower id first), once sorted.
std::vector<Candidate> make_candidates(std::span<const float> logits);
void sort_candidates(std::vector<Candidate>& cands);
// Sorts and fills p = softmax(logit) over the current candidates (double accumulation).
void softmax_candidates(std::vector<Candidate>& cands);
// llama.cpp's penalty: each distinct token in `history` gets logit/penalty if logit > 0 else logit*penalty.
void apply_repeat_penalty(std::vector<Candidate>& cands, std::span<const int32_t> history, float penalty);
void apply_top_k(std::vector<Candidate>& cands, int32_t k);
// Keeps the smallest prefix (by probability) whose cumulative probability reaches p; at least min_keep.
void apply_top_p(std::vector<Candidate>& cands, float p, size_t min_keep = 1);
// Keeps tokens with probability >= min_p * max probability (logit >= max_logit + ln(min_p)); at least min_keep.
void apply_min_p(std::vector<Candidate>& cands, float min_p, size_t min_keep = 1);
// Divides logits by temp; temp <= 0 keeps only the argmax.
void apply_temperature(std::vector<Candidate>& cands, float temp);

class Sampler {
  public:
    explicit Sampler(SamplerOptions options);
    // Runs the chain on one row of logits [n_vocab] and returns the chosen id (does not accept it).
    int32_t sample(std::span<const float> logits);
    // Appends a token (prompt or generated) to the repeat-penalty history.
    void accept(int32_t token);
    void reset(); // clears the history; the RNG keeps its state
    const SamplerOptions& options() const { return options_; }

  private:
    SamplerOptions options_;
    std::mt19937_64 rng_;
    std::deque<int32_t> history_;       // last repeat_last_n accepted tokens
    std::vector<int32_t> history_copy_; // scratch for the penalty
};

} // namespace lowbit::runtime
