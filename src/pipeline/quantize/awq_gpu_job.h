// SPDX-License-Identifier: MIT
// `lowbit quantize --method awq --device cuda`: the AWQ streaming driver with the layer on the GPU. Same contract and
// result as awq_quantize_model (awq_job.h): AutoAWQ's four scalable groups searched on the float weights (20 ratios),
// scales folded, clip search on every linear but q/k, f16-scale int codes, the float layer's outputs (or, with
// propagate_quantized, the quantized layer's) as the next layer's inputs. Per layer on the device
// (kernel::cuda::CalibLayer + quantize::awq::AwqCuda): one capture pass stores the inputs of q/k/v, o, gate/up and
// down for all N·L tokens; each grid point quantizes the group on the device and evaluates its block there — the
// attention block as a CalibLayer pass that stops at o_proj's input (the real layer: RoPE, GQA, biases), o_proj /
// the MLP / down_proj as GEMMs on the captured inputs — and only the loss (one double) comes back.
// Device memory ≈ N·L·(4·hidden + q_dim + ff)·4 bytes (hidden states, captured inputs, two float block outputs)
// + 2 × one layer's f32 weights + the CalibLayer and loss scratch. Host memory ≈ one layer's f32 weights (two with
// the prefetch of the next) + the int32 codes of every quantized linear (what AwqModelResult holds).
// fold_only is CPU-only (kUnsupported here).
#pragma once

#include "pipeline/quantize/awq_job.h"

#include <string>

namespace lowbit::pipeline {

struct AwqGpuSettings {
    // Layer and block GEMMs on the TF32 tensor cores (f32 accumulation): the fast default. false = exact f32 GEMMs
    // (tests comparing with the CPU job).
    bool tf32 = true;
    int64_t chunk_tokens = 0; // token rows per block-loss GEMM; 0 = 8192
};

// kUnsupported without CUDA (or for fold_only); kDevice / kOutOfMemory for device failures; kUsage / kBadInput as
// awq_quantize_model.
Result<AwqModelResult> awq_quantize_model_gpu(std::shared_ptr<const format::TensorStore> store,
                                              const format::ModelConfig& config, const CalibSamples& samples,
                                              const AwqJobOptions& options, const AwqGpuSettings& gpu = {});

// --device dispatch: "cpu" -> awq_quantize_model, "cuda" -> awq_quantize_model_gpu, "auto" -> cuda when this build
// has CUDA, a device answers and fold_only is off, else cpu. kUsage for other names.
Result<AwqModelResult> awq_quantize_model_on(const std::string& device,
                                             std::shared_ptr<const format::TensorStore> store,
                                             const format::ModelConfig& config, const CalibSamples& samples,
                                             const AwqJobOptions& options, ThreadPool* pool);

} // namespace lowbit::pipeline
