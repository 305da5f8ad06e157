// SPDX-License-Identifier: MIT
// The rows of the loader table (quant_loader.cpp): one matches/load pair per quantization_config kind.
#pragma once

#include "model/quantized/quant_loader.h"

#include <nlohmann/json.hpp>

namespace lowbit::model::quantized {

// The quantization_config object of ctx (already validated as JSON by wrap_quantized).
inline nlohmann::json quant_json(const QuantContext& ctx) {
    return nlohmann::json::parse(ctx.quantization_config_json, nullptr, false);
}

// bitsandbytes Linear4bit (load_in_4bit: nf4 | fp4, optional double quant): dense f32 at load.
bool matches_bnb_4bit(const QuantContext& ctx);
Status load_bnb_4bit(const QuantContext& ctx, QuantizedStore& store);
// bitsandbytes Linear8bitLt (load_in_8bit): int8 weight + SCB kept; threshold from llm_int8_threshold.
bool matches_bnb_8bit(const QuantContext& ctx);
Status load_bnb_8bit(const QuantContext& ctx, QuantizedStore& store);
// hqq HQQLinear encoded state dicts: dense f32 at load.
bool matches_hqq(const QuantContext& ctx);
Status load_hqq(const QuantContext& ctx, QuantizedStore& store);
// lowbit_rtn (int_group_v1 records: qweight, scales, zeros): dense f32 at load.
bool matches_rtn(const QuantContext& ctx);
Status load_rtn(const QuantContext& ctx, QuantizedStore& store);

// Hugging Face GPTQ (qweight/qzeros/scales/g_idx, v1 or gptq_v2): dense f32 at load.
bool matches_gptq(const QuantContext& ctx);
Status load_gptq(const QuantContext& ctx, QuantizedStore& store);

} // namespace lowbit::model::quantized
