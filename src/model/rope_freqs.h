// SPDX-License-Identifier: MIT
// RoPE inverse frequencies per rotated pair, with the scalings Llama-family checkpoints use.
#pragma once

#include "core/error.h"
#include "format/hf/config.h"

#include <vector>

namespace lowbit::model {

// inv_freq[i] = rope_theta^(-2i / head_dim) for i < head_dim / 2, computed in double, then scaled:
//  - freq_factors non-empty (GGUF rope_freqs.weight): inv_freq[i] / freq_factors[i] (ggml's rope divides by them);
//  - else rope_scaling.type "llama3": transformers' _compute_llama3_parameters (low-frequency bands / factor,
//    high-frequency untouched, smooth interpolation between);
//  - "linear": inv_freq / factor;  "" or "default": unchanged.
// Errors: kUnsupported for other scaling types; kBadInput for llama3 parameters that make no sense.
Result<std::vector<float>> compute_inv_freq(const format::ModelConfig& config, const std::vector<float>& freq_factors);

} // namespace lowbit::model
