// SPDX-License-Identifier: MIT
// Test helpers shared by the calibrated-quantization tests of this room (GPTQ / AWQ jobs, CPU and GPU): seeded
// random-token calibration samples and tiny Llama configs. Header-only; included by *_test.cpp / *_gputest.cpp files
// only.
#pragma once

#include "format/hf/config.h"
#include "pipeline/calibrate/calib_data.h"

#include <cstdint>
#include <random>

namespace lowbit::pipeline::calib_testing {

// n samples of len token ids drawn uniformly from [0, vocab) with mt19937(seed).
inline CalibSamples random_samples(int64_t n, int64_t len, int64_t vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> d(0, int32_t(vocab - 1));
    CalibSamples out(static_cast<size_t>(n));
    for (auto& s : out)
        for (int64_t i = 0; i < len; ++i) s.push_back(d(rng));
    return out;
}

// A 2-layer, 4-head Llama config with vocab 61 and context 128 (make_synthetic_model builds its weights).
inline format::ModelConfig tiny_llama_config(int64_t hidden, int64_t ff, int64_t n_kv_heads) {
    format::ModelConfig c;
    c.arch = "llama";
    c.hf_architecture = "LlamaForCausalLM";
    c.vocab_size = 61, c.hidden_size = hidden, c.intermediate_size = ff, c.n_layers = 2;
    c.n_heads = 4, c.n_kv_heads = n_kv_heads, c.max_position_embeddings = 128, c.rope_theta = 10000.0f;
    return c;
}

} // namespace lowbit::pipeline::calib_testing
