// SPDX-License-Identifier: MIT
// LayerViewStore: a one-decoder-layer window onto an HF model's TensorStore, for layer-by-layer calibration.
// It shows layer L's tensors as layer 0 ("model.layers.L.x" -> "model.layers.0.x"), every tensor outside
// "model.layers." as is, and hides the other layers; chosen weights can be overridden by owned f32 values (the
// dequantized GPTQ weights). A Transformer built on it with n_layers = 1 runs exactly layer L with a one-layer
// KV cache, so only that layer's weights are touched (mmap pages) and the cache is n_ctx x kv_dim, not x n_layers.
// This is how true-sequential GPTQ re-runs a layer with its already-quantized linears without a model hook.
#pragma once

#include "core/thread_pool.h"
#include "format/hf/config.h"
#include "format/tensor_store.h"
#include "model/transformer.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::pipeline {

class LayerViewStore final : public format::TensorStore {
  public:
    // `base` uses HF names. Overrides are keyed by the ORIGINAL name ("model.layers.L.self_attn.q_proj.weight").
    LayerViewStore(std::shared_ptr<const format::TensorStore> base, int64_t layer);
    // Replaces a tensor of layer L by f32 values of the same shape (kBadInput when absent or the size differs).
    Status set_override(const std::string& original_name, std::vector<float> values);
    void clear_overrides();

    const std::vector<format::TensorInfo>& tensors() const override { return infos_; }
    const format::TensorInfo* find(const std::string& name) const override;
    Result<TensorView> view(const std::string& name) const override;
    std::vector<std::string> paths() const override { return base_->paths(); }

  private:
    void reindex();
    std::shared_ptr<const format::TensorStore> base_;
    int64_t layer_;
    std::map<std::string, std::string> to_base_;          // visible name -> base name
    std::map<std::string, std::vector<float>> overrides_; // base name -> values
    std::vector<format::TensorInfo> infos_;
};

// "model.layers.<layer>." — the HF prefix of a decoder layer.
std::string hf_layer_prefix(int64_t layer);

// The CPU calibration drivers' forward step (GPTQ, AWQ): every sample through the one layer of `view` (set per
// layer by the driver) with a one-layer Transformer; hidden [n_samples * seqlen, hidden] f32.
struct LayerPass {
    std::shared_ptr<LayerViewStore> view;
    format::ModelConfig config1; // the model's config with n_layers = 1
    ThreadPool* pool = nullptr;
    int64_t seqlen = 0;

    LayerPass(const format::ModelConfig& config, ThreadPool* pool, int64_t seqlen);
    // in_place: `hidden` becomes the layer's output; else each sample runs on a copy (statistics only). The observer
    // sees every linear's input; `after(s)` runs after sample s.
    Status pass(std::vector<float>& hidden, int64_t n_samples, bool in_place, const model::LinearObserver& observer,
                const std::function<void(int64_t)>& after = {});
};

} // namespace lowbit::pipeline
