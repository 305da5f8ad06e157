// SPDX-License-Identifier: MIT
// The HF-style methods' parameters and their config.json `quantization_config`, as the loaders expect them:
//   nf4/fp4, int8: transformers BitsAndBytesConfig.to_dict() (all its keys, "_load_in_4bit" included);
//   hqq:           transformers HqqConfig.to_dict() ({"quant_config": hqq BaseQuantizeConfig, "skip_modules"});
//   rtn:           lowbit's own {"quant_method": "lowbit_rtn", "bits", "group_size", "sym",
//                  "layout": "int_group_v1"} — the records of scheme/int_group/int_group.h under each Linear's
//                  module prefix ("model.layers.N.mlp.down_proj."), for a weight [rows, cols]:
//                    qweight I32 [rows, ceil(cols*bits/32)]: per row a little-endian bit stream, code j at bits
//                            [j*bits, j*bits + bits) (3-bit codes may straddle words)
//                    scales  F16 [rows, cols/g] (g = group_size, or cols when group_size is -1)
//                    zeros   U8  [rows, cols/g] (sym false only; sym true uses zero = 2^(bits-1))
//                  weight = (q - zero) * scale.
#pragma once

#include "core/error.h"
#include "core/tensor.h"
#include "pipeline/quantize/quantize.h"
#include "quantize/algo_list.h"

#include <nlohmann/json.hpp>
#include <string>

namespace lowbit::pipeline::hfq {

struct HfMethod {
    std::string method;            // "rtn", "int8", "nf4", "fp4", "hqq"
    quantize::SchemeParams params; // defaults resolved (rtn 4-bit g128 asym; hqq 4-bit g64 axis 1; nf4/fp4 B64 DQ)
    std::string compute_dtype;     // "bfloat16" | "float16" | "float32": bnb compute dtype and NF4 quant-state dtype
    std::string type_label;        // report row of the quantized records: "int4", "int8", "nf4", "fp4", "hqq4"
};

// Resolves defaults and rejects options that do not apply or are out of range (kUsage, naming the option).
// `source_dtype` is the source's torch dtype name ("bfloat16", ...; others fall back to "bfloat16").
Result<HfMethod> resolve_method(const QuantizeJobOptions& options, const std::string& source_dtype);

// kUsage when the scheme cannot store a Linear of this shape (group size not dividing, packing rows...),
// naming the tensor, the option and the shape.
Status check_linear(const HfMethod& m, const std::string& name, const Shape& shape);

// The `quantization_config` object for config.json.
nlohmann::ordered_json quantization_config(const HfMethod& m);

} // namespace lowbit::pipeline::hfq
