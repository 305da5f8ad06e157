// SPDX-License-Identifier: MIT
// `lowbit quantize --method awq`: calibration samples -> layer-by-layer AWQ (streamed) -> AWQ checkpoint.
// Streaming as gptq_job.h: the inputs of decoder layer 0 for all samples ([N*L, hidden] f32) are the only
// model-sized activation buffer; per layer, through a one-layer view of the model (LayerViewStore):
//   1. one pass over the samples captures the inputs of q (= k = v), o, gate (= up) and down;
//   2. AutoAWQ's get_layers_for_scaling groups, all searched on the float weights (quantize/awq):
//        input_layernorm -> q,k,v        block: self_attn (the attention output, o_proj included)
//        v_proj -> o_proj                block: o_proj (only when v and o have the same shape: no GQA)
//        post_attention_layernorm -> gate,up   block: the MLP
//        up_proj -> down_proj            block: down_proj
//   3. fold: norm weight /= s (or previous linear's rows /= s), next linears' columns *= s, captured inputs /= s;
//   4. clip search on every linear but q/k; 5. quantize (f16 scales, int codes/zeros per group);
//   6. the float layer's outputs are the next layer's inputs, as AutoAWQ does (propagate_quantized = true feeds
//      the quantized layer's outputs instead, as the GPTQ job does; on lowbit-ref-30m, 32x512 calib.txt: float
//      ΔPPL +2.73 % / KLD 0.0881, quantized +3.91 % / KLD 0.0879 — the AutoAWQ choice is kept as the default).
// The self_attn block (AutoAWQ's module2inspect for q/k/v) is computed directly on the captured normed inputs:
// q/k/v -> RoPE -> attention -> float o_proj, with the model's kernels, RoPE table and biases. It is checked once
// per layer against the observed output; if it differs (an architecture quirk it does not model), the whole
// decoder layer runs with q/k/v overridden and the o_proj input is read through the observer instead (same
// result, plus a wasted MLP pass per grid point).
// Cost per layer ≈ 20 evaluations of each block (AutoAWQ's grid) ≈ 30 decoder-layer forwards over the N*L
// calibration tokens, plus the clip search (<= 1024 sampled tokens). lowbit-ref-30m, 16 x 512 tokens, 2 busy CPU
// cores: 9 min wall, 238 s CPU, 353 MB peak RSS.
// Peak memory ≈ N*L*(4*hidden + 2*hidden + intermediate)*4 bytes (layer input, captured inputs, two float block
// outputs) + one layer's f32 weights.
#pragma once

#include "format/hf/config.h"
#include "format/tensor_store.h"
#include "pipeline/calibrate/calib_data.h"
#include "pipeline/quantize/quantize.h"
#include "quantize/awq/awq.h"
#include "scheme/awq/awq_pack.h"

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace lowbit::pipeline {

// How the quantized linears are stored. AWQ GEMM (AutoAWQ WQLinear_GEMM, quant_method "awq") packs 4-bit only;
// other widths are written in the HF GPTQ layout (checkpoint_format gptq_v2: exact zeros, g_idx = k / g), which
// represents AWQ's w = s (q - z) exactly.
enum class AwqLayout { kAuto, kAwqGemm, kGptq }; // kAuto: AWQ GEMM for 4 bits, else GPTQ

struct AwqJobOptions {
    int bits = 4;                     // --bits: 2, 3, 4, 8
    int64_t group_size = 128;         // --group-size (divides every in_features; -1 = per output channel)
    bool zero_point = true;           // --asym (default) / --sym
    int n_grid = 20;                  // scale grid (ratios i/20) and clip shrink step
    double max_shrink = 0.5;          // clip: down to 50 % of max |w|
    bool clip = true;                 // run the clipping search (AutoAWQ apply_clip)
    bool duo_scaling = true;          // AutoAWQ >= 0.2 scale formula
    int64_t n_sample_token = 512;     // clip: tokens sampled
    bool propagate_quantized = false; // next layer's inputs from the float layer (AutoAWQ); true: quantized
    AwqLayout layout = AwqLayout::kAuto;
    CalibOptions calib{"", 128, 512, 0}; // AutoAWQ: 128 samples x 512 tokens
    // Test hook: every scale search result, keyed by the scaled group's previous op
    // ("model.layers.3.input_layernorm", "model.layers.3.mlp.up_proj", ...).
    std::function<void(const std::string& prev_op, const quantize::awq::ScaleSearch& search)> on_scales;
    // Test hook: stop after folding the scales (no clip, no quantization); result.folded gets every layer's
    // scaled f32 weights and replaced norms. The float model's output must not change.
    bool fold_only = false;
    // Test hook: evaluate the q/k/v block through full layer passes even when the direct path is valid.
    bool attention_via_layer = false;
};

struct AwqModelResult {
    std::map<std::string, scheme::awq::AwqLinear> linears; // HF module prefix -> quantized linear
    std::map<std::string, std::vector<float>> replaced;    // folded tensors (norm weights, v bias): HF name -> f32
    std::map<std::string, std::vector<float>> folded;      // fold_only: every scaled weight, HF tensor name -> f32
    std::map<std::string, double> best_ratio;              // prev op -> chosen ratio
    uint64_t activation_bytes = 0;                         // layer input + captured inputs + float block outputs
    uint64_t peak_layer_bytes = 0;                         // one layer's f32 weights
    double seconds_forward = 0, seconds_search = 0, seconds_clip = 0;
};

// kUsage / kBadInput when the options do not fit the model (bits, group size vs every in_features, grid).
Status check_awq_options(const AwqJobOptions& options, const format::ModelConfig& config);

// The quantize::awq options of a job.
quantize::awq::AwqOptions awq_options(const AwqJobOptions& options);

// The streaming driver on any HF-named Llama-family store. Checks options (kUsage) and shapes.
Result<AwqModelResult> awq_quantize_model(std::shared_ptr<const format::TensorStore> store,
                                          const format::ModelConfig& config, const CalibSamples& samples,
                                          const AwqJobOptions& options, ThreadPool* pool);

// The source store with `replaced` tensors (f32) and every quantized linear's weight replaced by its f32
// dequantization: what the checkpoint computes, for evaluation in memory.
std::shared_ptr<format::TensorStore> make_dequantized_store(std::shared_ptr<const format::TensorStore> store,
                                                            const AwqModelResult& result);

// The whole job: open the HF model (-m), load calibration samples, quantize, write (-o). The dispatcher's bits /
// group_size / symmetric, when set, override `awq`'s.
Result<QuantizeJobReport> quantize_awq_to_hf(const QuantizeJobOptions& options, const AwqJobOptions& awq);

} // namespace lowbit::pipeline
