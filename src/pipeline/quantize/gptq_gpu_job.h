// SPDX-License-Identifier: MIT
// `lowbit quantize --method gptq --device cuda`: the streaming GPTQ driver with the layer on the GPU.
// Same contract as gptq_quantize_model (gptq_job.h): true-sequential groups, quantized-input propagation, every
// finished linear through emit_linear (options.sink). Per layer: host f32 weights from the mmap'd store ->
// kernel::cuda::CalibLayer (all calibration hidden states stay on the device) -> DeviceHessian per input group ->
// quantize::gptq::GptqCudaSolver on the device weights (Ŵ stays there for the next group and the next layer).
// Device memory ≈ N·L·hidden·4 (hidden states) + one layer's f32 weights + attention scratch + 12·K² (solver).
// Host memory ≈ one layer's f32 weights + the codes of one linear (the embeddings only at the start).
#pragma once

#include "pipeline/quantize/gptq_job.h"

#include <string>

namespace lowbit::pipeline {

struct GptqGpuSettings {
    // Layer GEMMs in TF32 and Hessians by split-TF32 products into f64 sums (kernel::cuda::HessianMath::kSplitTf32):
    // the fast default. false = exact f32 layer GEMMs and f64 Hessians (tests comparing with the CPU job).
    bool tf32 = true;
    int64_t chunk_samples = 0; // samples per forward chunk; 0 = CalibLayer's default
};

// kUnsupported without CUDA; kDevice for device failures; kUsage / kBadInput as gptq_quantize_model.
// GptqJobOptions::quantize_linear (GGUF grids) is not supported on the device (kUnsupported).
Result<GptqModelResult> gptq_quantize_model_gpu(std::shared_ptr<const format::TensorStore> store,
                                                const format::ModelConfig& config, const CalibSamples& samples,
                                                const GptqJobOptions& options, const GptqGpuSettings& gpu = {});

// --device dispatch: "cpu" -> gptq_quantize_model, "cuda" -> gptq_quantize_model_gpu, "auto" -> cuda when this
// build has CUDA and a device answers and no GGUF-grid hook is set, else cpu. kUsage for other names.
Result<GptqModelResult> gptq_quantize_model_on(const std::string& device,
                                               std::shared_ptr<const format::TensorStore> store,
                                               const format::ModelConfig& config, const CalibSamples& samples,
                                               const GptqJobOptions& options, ThreadPool* pool);

// Largest resident set of this process so far (getrusage), bytes.
uint64_t peak_host_rss_bytes();

} // namespace lowbit::pipeline
