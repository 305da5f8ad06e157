// SPDX-License-Identifier: MIT
// `lowbit inspect`: what a model file holds (HF folder, .safetensors file or GGUF): architecture,
// hyper-parameters, parameter count, per-tensor table, totals by type, bits per weight, and a memory table
// for this model's tensors under common storage schemes.
//
// Bits per weight (bpw) = total tensor bits (data + scales, as stored) / total tensor elements; bpw_2d is the
// same over 2-D tensors only (the weights a quantizer touches). n_params excludes rope_freqs.weight (a
// constant, not a parameter) and HF rotary inv_freq buffers.
//
// Memory table (estimates for THIS model's tensor shapes; 2-D tensors [N rows, K cols] use the scheme,
// 1-D tensors (norms, biases) are counted at f32, except in the FP16/BF16 row where everything is 16-bit):
//   FP32                 32 bits per element
//   FP16/BF16            16
//   INT8 row-wise        8·N·K + 32·N            (LLM.int8: int8 weights + f32 absmax per row)
//   NF4                  4·n + 32·⌈n/64⌉          (bitsandbytes, block 64, f32 absmax)            ≈ 4.5 bpw
//   NF4 + double quant   4·n + 8·⌈n/64⌉ + 32·⌈⌈n/64⌉/256⌉ (8-bit absmax, f32 per 256 blocks)   ≈ 4.127 bpw
//   INT4 g128 (GPTQ)     4·N·K + (16 + 4)·N·⌈K/128⌉ + 32·K (f16 scale, packed 4-bit zero, int32 g_idx) ≈ 4.16
//   GGUF Q8_0 8.5, Q6_K 6.5625, Q5_K 5.5, Q4_K 4.5, Q4_0 4.5, Q3_K 3.4375, Q2_K 2.625: the block layout's
//                        bytes per row (ggml block sizes); a tensor whose K is not a multiple of the block
//                        (32 or 256) is counted at f16, as llama.cpp falls back for such rows.
// (n = N·K; code tables of NF4 — 16 + 256 floats per tensor — are left out.)
#pragma once

#include "core/error.h"
#include "core/tensor.h"
#include "format/hf/config.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lowbit::pipeline {

struct InspectTensor {
    std::string name;
    Shape shape;
    DType dtype = DType::kF32;
    uint64_t n_bytes = 0;
};

struct InspectTypeTotal {
    int64_t n_tensors = 0;
    int64_t n_elems = 0;
    uint64_t n_bytes = 0;
};

struct InspectMemoryRow {
    std::string scheme;
    uint64_t n_bytes = 0;
    double bpw = 0; // over all counted elements
};

struct InspectReport {
    std::string path;
    std::string format; // "hf", "safetensors", "gguf"
    std::string architecture;
    std::optional<format::ModelConfig> config; // when the file says enough (config.json / GGUF keys)
    std::string config_error;                  // why config is absent, if it is
    std::vector<InspectTensor> tensors;
    std::map<std::string, InspectTypeTotal> by_type; // key: dtype name
    int64_t n_params = 0;
    uint64_t tensor_bytes = 0;
    uint64_t file_bytes = 0; // sum over the files behind the model
    double bpw = 0, bpw_2d = 0;
    // HF directories with a quantization_config: the method, and n_params / bpw / the memory table are computed
    // from the model's logical shapes (config.json), not from the packed records on disk.
    std::string quant_method;
    std::vector<InspectMemoryRow> memory;
    std::vector<std::pair<std::string, std::string>> metadata; // GGUF KVs / __metadata__ (values as JSON text)
};

// Errors: kBadInput (not a model file, malformed; a GGUF of a supported architecture, or an HF folder, whose
// hyper-parameters are missing or out of range, e.g. a block count of 2^62), kIo. A GGUF of another architecture or
// none (an imatrix file) is still reported, with config_error saying why it has no config.
Result<InspectReport> inspect_model(const std::string& path);

// Renderings: a human table and a JSON document (keys as in InspectReport).
std::string inspect_report_text(const InspectReport& r);
std::string inspect_report_json(const InspectReport& r);

} // namespace lowbit::pipeline
