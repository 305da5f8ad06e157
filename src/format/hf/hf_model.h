// SPDX-License-Identifier: MIT
// Hugging Face model directories: config.json (+ generation_config.json) -> ModelConfig, and the weights
// (model.safetensors or a sharded index) as a TensorStore.
// Supported: LlamaForCausalLM, MistralForCausalLM (arch "llama"), Qwen2ForCausalLM (arch "qwen2").
#pragma once

#include "core/error.h"
#include "format/hf/config.h"
#include "format/safetensors/safetensors_reader.h"

#include <memory>
#include <string>

namespace lowbit::hf {

// Reads <dir>/config.json and, when present, <dir>/generation_config.json (its bos/eos ids win).
// Errors: kBadInput (missing/malformed/inconsistent), kUnsupported (architecture not in the list above).
Result<format::ModelConfig> parse_hf_config(const std::string& dir);
// The same from JSON text (generation_config_json may be empty); `label` names the source in messages.
Result<format::ModelConfig> parse_hf_config_json(const std::string& config_json,
                                                 const std::string& generation_config_json,
                                                 const std::string& label = "config.json");

struct HfModel {
    format::ModelConfig config;
    std::unique_ptr<safetensors::Store> store;
    std::string dir;
};

// Config + weights. Errors as above, plus the safetensors reader's.
Result<HfModel> open_hf_model(const std::string& dir);

// True if `dir` looks like an HF model directory (has config.json).
bool is_hf_model_dir(const std::string& dir);

} // namespace lowbit::hf
