// SPDX-License-Identifier: MIT
// Calibration samples for calibrated quantization (GPTQ, AWQ): N token windows of L tokens.
//   text file: tokenized once with the model's tokenizer (no BOS/EOS), N windows at seeded random offsets
//              (AutoGPTQ/GPTQModel style: uniform start in [0, T - L]);
//   "self":    data-free; the model samples its own text from BOS (seeded, temperature 1, EOG tokens masked).
//   "random":  data-free and model-free; seeded uniform token ids over the normal (and byte) tokens, for timing
//              runs on synthetic models (quality comes from real text or "self").
#pragma once

#include "core/error.h"
#include "runtime/session.h"

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::pipeline {

struct CalibOptions {
    std::string source;      // a text file path, "self" or "random"
    int64_t n_samples = 128; // N
    int64_t seqlen = 2048;   // L (at most the model context)
    uint64_t seed = 0;
};

using CalibSamples = std::vector<std::vector<int32_t>>; // [N][L] token ids

// KV-cache positions the runtime::Session passed to load_calib_samples needs: seqlen for "self" (it generates),
// 1 otherwise (it only tokenizes; a 7B cache of 2048 positions would be 2 GiB of host memory for nothing).
int64_t calib_session_ctx(const CalibOptions& options);

// kUsage: n_samples/seqlen < 1, seqlen > model context (max_position_embeddings, else the session's; for "self"
// the session's KV cache), no source. kIo: file cannot be read.
// kBadInput: empty file, fewer than N*L tokens (says how many there are), model without a tokenizer, text that is not
// valid UTF-8. kOutOfMemory: check_calib_memory against the physical memory, before anything is sized by N*L.
Result<CalibSamples> load_calib_samples(runtime::Session& session, const CalibOptions& options);

// N x L x hidden f32 (the calibration activations of one layer, the least calibration holds) through checked
// arithmetic against `limit` bytes: kOutOfMemory "the calibration size overflows (...)" or "calibration needs at
// least X GiB (...), more than ...; lower --nsamples or --seqlen". kUsage as above for N or L < 1.
Status check_calib_memory(const CalibOptions& options, int64_t hidden_size, uint64_t limit);

// The window logic alone: N windows of L tokens from `tokens` (seeded). Errors as above; `label` names the source.
Result<CalibSamples> sample_windows(const std::vector<int32_t>& tokens, const CalibOptions& options,
                                    const std::string& label);

// "self": N sequences of L tokens sampled by the model from BOS (the BOS is the first token).
Result<CalibSamples> generate_calib_samples(runtime::Session& session, const CalibOptions& options);

// "random": N x L ids drawn uniformly (seeded) from `allowed` (the candidate ids). kUsage as above;
// kBadInput when `allowed` is empty.
Result<CalibSamples> random_samples(const std::vector<int32_t>& allowed, const CalibOptions& options);

// The ids "random" draws from: tokens of type normal or byte that are not BOS/EOS/EOG; without a tokenizer,
// every id in [0, n_vocab).
std::vector<int32_t> random_calib_vocab(const tokenizer::Tokenizer* tok, int64_t n_vocab);

} // namespace lowbit::pipeline
