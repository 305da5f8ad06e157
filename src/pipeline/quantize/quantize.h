// SPDX-License-Identifier: MIT
// The `lowbit quantize` job: load (HF dir | GGUF, mmap) -> per tensor: algorithm -> scheme bytes -> writer
// (streamed, atomic) -> report. Two back halves share the options and the report:
//   GGUF methods (q4_0 … q8_0, q2_k … q6_k, the mixes q4_k_m …): a GGUF file llama.cpp runs (quantize_gguf.cpp);
//   HF-style methods (rtn, int8, nf4, fp4, hqq, …): a safetensors directory with its quantization_config
//   (quantize_hf.cpp).
#pragma once

#include "core/dtype.h"
#include "core/error.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::pipeline {

struct QuantizeJobOptions {
    std::string input;                 // HF model directory or .gguf file
    std::string output;                // .gguf file (GGUF methods) or an output directory (HF-style methods)
    std::string method;                // "q4_k_m", "q8_0", "nf4", "hqq", ... (case-insensitive)
    std::optional<int> bits;           // rtn/hqq/gptq: unset = method default
    std::optional<int64_t> group_size; // rtn/hqq/gptq: unset = method default (-1 = per-channel)
    std::optional<bool> symmetric;     // rtn/gptq: unset = method default
    bool double_quant = true;          // nf4/fp4
    std::optional<int64_t> block_size; // nf4/fp4 block (default 64)
    std::string imatrix_path;          // GGUF k-quants: llama.cpp GGUF imatrix file
    std::string format;                // "", "gguf" or "hf": must agree with the method when given
    std::string gguf_type;             // gptq --format gguf: llama.cpp file type of the mix (Q4_K_M, Q4_0, ...)
    // Calibrated methods (gptq, awq): calibration text ("self" = the model samples its own), N samples x L tokens.
    std::string calib;
    int64_t n_samples = 128;
    int64_t seqlen = 0; // 0 = the method's default (gptq 2048, awq 512 as AutoAWQ)
    uint64_t seed = 0;
    // gptq act-order + static groups (and asymmetric groups, set in quantize.cpp): the default because it measures
    // best on the reference model (docs/quality.md, "GPTQ options") and keeps g_idx trivial (i / group_size) for
    // fast kernels and GGUF grids; opt out with --no-desc-act / --no-static-groups (--sym).
    bool desc_act = true;
    bool static_groups = true;
    double damp = 0.01;   // gptq damping, fraction of mean diag(H)
    bool gptq_v2 = false; // gptq checkpoint_format "gptq_v2" (zeros stored as is, not zero-1)
    int n_threads = 0;    // 0 = all cores
    bool progress = true; // progress bar per tensor on a terminal
    // hqq solver: "auto" (cuda when compiled in and a device is usable), "cpu" or "cuda".
    std::string device = "auto";
    // mix (per-tensor GGUF types to a budget, mix_budget.h): exactly one target; candidate types ("" = default).
    double target_bpw = 0;        // tensor bytes * 8 / params
    uint64_t target_size = 0;     // whole output file, bytes
    std::string mix_types;        // "q3_k,q4_k,q6_k"
    std::string mix_report;       // mix: write every tensor's candidates (type, bytes, proxy) as JSON here
    std::string mix_sensitivity;  // mix: measured per-tensor KLD (bench/mix_proxy_check.py --json) to calibrate
    int64_t imatrix_chunks = 100; // --calib FILE for mix: chunks of 512 tokens for the in-process imatrix
    bool mix_gptq = false;        // mix --gptq: every decoder linear GPTQ'd onto its chosen type's grid (gptq_gguf.h)
    // GGUF methods: llama-quantize's --tensor-type PATTERN=TYPE overrides (ECMAScript regex searched in the
    // tensor name), applied after the mix rules to tensors that are quantized; the first matching pattern wins.
    std::vector<std::string> tensor_types;
};

// One row of the final table: per storage type.
struct QuantizeTypeRow {
    std::string type; // "q4_k", "f32", "nf4", ...
    int64_t n_tensors = 0;
    int64_t n_elems = 0;  // weights covered
    uint64_t n_bytes = 0; // bytes written for them (scales, zeros and metadata tensors included)
};

struct QuantizeJobReport {
    std::string method;
    std::string output;
    std::vector<QuantizeTypeRow> rows;
    int64_t n_params = 0;    // elements of all source tensors
    uint64_t n_bytes = 0;    // tensor bytes written
    uint64_t file_bytes = 0; // size on disk (all files)
    double seconds = 0.0;
    std::string allocation; // mix: the chosen types per layer (printed before the table)
    double bpw() const { return n_params ? 8.0 * double(n_bytes) / double(n_params) : 0.0; }
};

// True for methods that write GGUF (legacy, k-quants and their mixes, f32/f16/bf16, the budgeted "mix").
bool is_gguf_method(std::string_view method);
// Every method name `lowbit quantize --method` accepts, for --help and error messages.
std::vector<std::string> quantize_method_names();

// Validates the options (unknown method, bad combination: kUsage with a message) and runs the right half.
Result<QuantizeJobReport> run_quantize(const QuantizeJobOptions& options);
// One tensor of the planned GGUF output: llama.cpp's name, the mix's type, GGUF dims (ne[0] = row length).
struct GgufPlannedTensor {
    std::string name;
    DType type = DType::kF32;
    std::vector<int64_t> ne;
};
// Bytes computed elsewhere (GPTQ onto GGUF grids) for some tensors of the plan: GGUF name -> bytes of exactly
// the planned type and dims, written instead of quantizing the source tensor. Called once, after the mix is
// planned (for `mix`: after the budget chose every type) and before anything is written.
using GgufPrecompute =
    std::function<Result<std::map<std::string, std::vector<uint8_t>>>(const std::vector<GgufPlannedTensor>& plan)>;
Result<QuantizeJobReport> quantize_to_gguf(const QuantizeJobOptions& options, const GgufPrecompute& precompute = {});
Result<QuantizeJobReport> quantize_to_hf(const QuantizeJobOptions& options);

// The final table: per type tensors, bytes, bpw; then total size and time.
std::string render_quantize_report(const QuantizeJobReport& report);

} // namespace lowbit::pipeline
