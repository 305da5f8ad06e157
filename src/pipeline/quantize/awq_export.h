// SPDX-License-Identifier: MIT
// AutoAWQ GEMM checkpoint writer (ANCHORS.md §3.2): model.safetensors with qweight/qzeros/scales per quantized
// Linear (other tensors copied, or replaced by the caller's f32 data, e.g. RMSNorm weights with AWQ's scales
// folded in, written in the source dtype), config.json with quantization_config as transformers' AwqConfig
// reads it, quant_config.json as AutoAWQ writes it, tokenizer/generation files copied. Files are written atomically.
#pragma once

#include "format/tensor_store.h"
#include "pipeline/calibrate/calib_data.h"
#include "pipeline/quantize/quantize.h"
#include "scheme/awq/awq_pack.h"

#include <map>
#include <string>
#include <vector>

namespace lowbit::pipeline {

struct AwqExportOptions {
    int bits = 4;                 // AutoAWQ GEMM: 4 only (kUnsupported otherwise)
    int64_t group_size = 128;     // q_group_size; -1 = one group per row
    bool zero_point = true;       // asymmetric (AutoAWQ default); false is recorded as is
    std::string version = "gemm"; // only "gemm" is written (kUnsupported otherwise)
    CalibOptions calib;           // recorded in quantization_config.meta (source, nsamples, seqlen, seed)
};

// Writes the AWQ directory `out_dir` from the source model directory `src_dir` (config.json and tokenizer files
// are read from it) and the tensors of `store`:
//   linears:  HF module prefix ("model.layers.0.self_attn.q_proj") -> quantized Linear; "<prefix>.weight" of the
//             store is replaced by "<prefix>.qweight/.qzeros/.scales" (a bias, if any, is copied).
//   replaced: HF tensor name -> f32 values with the tensor's element count, written in the tensor's dtype.
// Fills report rows ("awq_int4" and one per copied dtype), n_params, n_bytes, file_bytes.
// Errors: kUsage (a linear/replaced name not in the store, sizes, bits/group/version mismatching a linear),
// kUnsupported (bits != 4, version != "gemm"), kBadInput (source config.json), kIo.
Status write_awq_checkpoint(const std::string& out_dir, const std::string& src_dir, const format::TensorStore& store,
                            const std::map<std::string, scheme::awq::AwqLinear>& linears,
                            const std::map<std::string, std::vector<float>>& replaced, const AwqExportOptions& options,
                            QuantizeJobReport& report);

} // namespace lowbit::pipeline
