// SPDX-License-Identifier: MIT
// Host side of the GPU calibration drivers (gptq_gpu_job, awq_gpu_job): the decoder geometry as
// kernel::cuda::LayerDims, the seven linears' shapes in Slot order, and one layer's float tensors read from the
// (mmap'd) store as f32 in parallel chunks — what both drivers upload to a CalibLayer.
#pragma once

#include "format/hf/config.h"
#include "format/tensor_store.h"
#include "kernel/cuda/calib_layer.h"

#include <array>
#include <string>
#include <vector>

namespace lowbit::pipeline {

using SlotSizes = std::array<int64_t, kernel::cuda::kNumSlots>;

// The layer geometry of `config` (head_dim implied when absent, RoPE frequencies from model::compute_inv_freq).
Result<kernel::cuda::LayerDims> layer_dims(const format::ModelConfig& config);
// out_features / in_features of q, k, v, o, gate, up, down.
SlotSizes slot_n_out(const kernel::cuda::LayerDims& dims);
SlotSizes slot_n_in(const kernel::cuda::LayerDims& dims);

// One layer's float tensors: linears [out, in] and biases (empty when absent) in Slot order, the two norms.
struct HostLayer {
    std::array<std::vector<float>, kernel::cuda::kNumSlots> w, b;
    std::vector<float> attn_norm, ffn_norm;
};

// A bf16/f16/f32 tensor as f32; its shape must be [rows, cols] (cols > 0) or [rows]. `method` names the caller in
// errors ("GPTQ", "AWQ"): kUnsupported for other dtypes, kBadInput for a shape the config does not imply.
Result<std::vector<float>> load_f32_checked(const format::TensorStore& store, const std::string& name, int64_t rows,
                                            int64_t cols, const char* method);

// Layer `li` of an HF-named store (meant to run on a helper thread for the next layer while the GPU works).
Result<HostLayer> read_host_layer(const format::TensorStore& store, int64_t li, int64_t hidden, const SlotSizes& n_out,
                                  const SlotSizes& n_in, const char* method);

// --device of a calibrated method: true = run on the GPU. "cpu" -> false; "auto" -> true when this build has CUDA, a
// device answers and `gpu_capable`; "cuda" -> true, or kUnsupported ("--device cuda: this lowbit was built without
// CUDA ...") / kDevice ("--device cuda: no CUDA device ...") / kUnsupported when !gpu_capable (`why_not` says why),
// each naming --device cpu as the way out — never a silent CPU run. kUsage for other names.
Result<bool> resolve_calib_device(const std::string& device, const char* method, bool gpu_capable = true,
                                  const std::string& why_not = {});
// The same checks as a Status: jobs call it right after reading the config, before calibration work.
Status check_calib_device(const std::string& device, const char* method);

} // namespace lowbit::pipeline
