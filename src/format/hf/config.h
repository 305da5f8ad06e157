// SPDX-License-Identifier: MIT
// ModelConfig: the hyper-parameters of a Llama-family model, read from a Hugging Face config.json
// (+ generation_config.json) or from GGUF metadata. One struct for both, so the model room never sees
// a file format.
#pragma once

#include "core/error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::format {

struct RopeScaling {
    std::string type; // "" (none), "llama3", "linear"
    float factor = 1.0f;
    float low_freq_factor = 1.0f;
    float high_freq_factor = 4.0f;
    int64_t original_max_position_embeddings = 0;
};

struct ModelConfig {
    std::string hf_architecture; // "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"
    std::string arch;            // lowbit/GGUF arch name: "llama", "qwen2"
    int64_t vocab_size = 0;
    int64_t hidden_size = 0;       // n_embd
    int64_t intermediate_size = 0; // n_ff
    int64_t n_layers = 0;
    int64_t n_heads = 0;
    int64_t n_kv_heads = 0;
    int64_t head_dim = 0; // hidden_size / n_heads unless config says otherwise
    int64_t max_position_embeddings = 0;
    float rms_norm_eps = 1e-5f;
    float rope_theta = 10000.0f;
    RopeScaling rope_scaling;
    bool tie_word_embeddings = false;
    bool attention_bias = false; // q/k/v biases (Qwen2: true)
    std::vector<int64_t> bos_token_ids;
    std::vector<int64_t> eos_token_ids;
    std::string torch_dtype; // as written in config.json ("bfloat16")
};

// Sanity bounds on the counts of a config read from a file (far above any published model; they keep every
// size product derived from them — tensor shapes, parameter counts, per-layer vectors — well inside int64 and
// stop a forged `num_hidden_layers = 2^62` before anything is reserved or allocated).
inline constexpr int64_t kMaxLayers = 4096;
inline constexpr int64_t kMaxHidden = int64_t(1) << 18;
inline constexpr int64_t kMaxIntermediate = int64_t(1) << 21;
inline constexpr int64_t kMaxHeads = int64_t(1) << 14;
inline constexpr int64_t kMaxHeadDim = int64_t(1) << 14;
inline constexpr int64_t kMaxVocab = int64_t(1) << 24;
inline constexpr int64_t kMaxPositions = int64_t(0xffffffff); // GGUF stores it as u32

// Where a config came from, for the key names in messages.
enum class ConfigSource { kHfConfig, kGguf };

// Checks the counts of `c` against the bounds above and their products (q/kv projection widths, embedding and
// per-layer parameter counts, the whole model) with checked arithmetic; max_position_embeddings may be 0
// (unknown) but not negative. kBadInput naming `label`, the key, the bound and the value.
Status check_model_config(const ModelConfig& c, const std::string& label, ConfigSource source);

} // namespace lowbit::format
