// SPDX-License-Identifier: MIT
// Quantized Hugging Face directories: config.json's `quantization_config` picks one row of the loader table
// (one row per quant_method / variant); the row turns each quantized Linear's records into what the kernels
// multiply by (see quantized_store.h). Supported:
//   bitsandbytes load_in_4bit (nf4 | fp4, +/- double quant)  -> packed kNF4x64 / kFP4x64 (repack.h)
//   bitsandbytes load_in_8bit (LLM.int8)                     -> int8 + SCB, decomposed matmul at run time
//   hqq (1/2/3/4/8 bit)                                      -> 4-bit axis-1 groups packed kI4Z, else dense f32
//   lowbit_rtn (int_group_v1: 2/3/4/8 bit groups)            -> 4-bit packed kI4Z, else dense f32
//   gptq (v1 | gptq_v2, 2/3/4/8 bit), awq (GEMM)             -> 4-bit packed kI4Z (not GPTQ act-order), else dense
// Packed layouts are repacked at load, one module at a time (the file's records are read, repacked, dropped), and
// multiplied by CPU kernels on the packed blocks; what cannot be repacked exactly (repack.h) is dequantized to
// dense f32 once at load (the reference path, 4 bytes per weight), with one log line naming the first such module.
// With dequantize_all (convert / GGUF quantize of a quantized directory) everything is dense f32, LLM.int8 too.
#pragma once

#include "core/error.h"
#include "format/hf/config.h"
#include "format/tensor_store.h"
#include "model/quantized/quantized_store.h"

#include <memory>
#include <span>
#include <string>

namespace lowbit::model::quantized {

// What a loader row gets: the parsed quantization_config (as JSON text) and the model config.
struct QuantContext {
    std::string quantization_config_json;
    format::ModelConfig config;
    // Every quantized weight becomes dense f32, LLM.int8 included (w = q * SCB / 127): what a converter to
    // another format reads. false (the runtime): LLM.int8 keeps int8 + SCB for the decomposed matmul.
    bool dequantize_all = false;
    // 4-bit layouts stay packed (repack.h: kI4Z / kNF4x64 / kFP4x64 blocks, CPU kernels on the packed form).
    // false with dequantize_all, or when the environment sets LOWBIT_HF_DENSE=1 (the dense f32 path, for A/B
    // comparisons and as a fallback).
    bool repack = true;
};

struct QuantLoader {
    const char* quant_method; // quantization_config.quant_method
    const char* variant;      // "load_in_4bit", "load_in_8bit", or "" when the method has one row
    // True when this row reads the given quantization_config (method + variant flags).
    bool (*matches)(const QuantContext& ctx);
    // Replaces the quantized Linear records in `store` (which wraps the file's tensors). Errors: kBadInput
    // naming the tensor (missing record, bad size/shape), kUnsupported (a setting this row cannot read).
    Status (*load)(const QuantContext& ctx, QuantizedStore& store);
};

std::span<const QuantLoader> quant_loaders();

// "bitsandbytes (load_in_4bit), bitsandbytes (load_in_8bit), hqq, lowbit_rtn" for messages.
std::string supported_quant_methods();

// True when config.json text has a "quantization_config" object. Errors: kBadInput (malformed JSON).
Result<bool> has_quantization_config(const std::string& config_json);

// A short name of the quantization config.json describes, for messages: "gptq int4 g128", "awq int4 g128",
// "bitsandbytes nf4", "bitsandbytes LLM.int8", "hqq int4 g64", "lowbit_rtn int3 g64 sym"; "" when config.json
// has no quantization_config. Errors: kBadInput (malformed JSON).
Result<std::string> describe_quantization(const std::string& config_json);

// The store to bind: `base` itself when config.json has no quantization_config, else a QuantizedStore built
// by the matching row. `dequantize_all`: see QuantContext. Errors: kUnsupported naming an unknown quant_method
// (and the supported ones), plus the row's errors.
Result<std::shared_ptr<const format::TensorStore>> wrap_quantized(std::shared_ptr<const format::TensorStore> base,
                                                                  const std::string& config_json,
                                                                  const format::ModelConfig& config,
                                                                  bool dequantize_all = false);

// The same reading <dir>/config.json (a Hugging Face model directory).
Result<std::shared_ptr<const format::TensorStore>> wrap_quantized_dir(std::shared_ptr<const format::TensorStore> base,
                                                                      const std::string& dir,
                                                                      const format::ModelConfig& config,
                                                                      bool dequantize_all = false);

} // namespace lowbit::model::quantized
