// SPDX-License-Identifier: MIT
// LayerViewStore: one decoder layer of an HF TensorStore renamed to layer 0, with f32 overrides.
#include "pipeline/calibrate/layer_view_store.h"

#include <cstring>

namespace lowbit::pipeline {

std::string hf_layer_prefix(int64_t layer) {
    return "model.layers." + std::to_string(layer) + ".";
}

LayerViewStore::LayerViewStore(std::shared_ptr<const format::TensorStore> base, int64_t layer)
    : base_(std::move(base)), layer_(layer) {
    const std::string mine = hf_layer_prefix(layer), zero = hf_layer_prefix(0);
    for (const auto& t : base_->tensors()) {
        if (t.name.rfind("model.layers.", 0) != 0)
            to_base_[t.name] = t.name;
        else if (t.name.rfind(mine, 0) == 0)
            to_base_[zero + t.name.substr(mine.size())] = t.name;
    }
    reindex();
}

void LayerViewStore::reindex() {
    infos_.clear();
    for (const auto& [visible, base_name] : to_base_) {
        format::TensorInfo info = *base_->find(base_name);
        info.name = visible;
        if (auto it = overrides_.find(base_name); it != overrides_.end()) {
            info.dtype = DType::kF32;
            info.n_bytes = it->second.size() * sizeof(float);
        }
        infos_.push_back(std::move(info));
    }
}

Status LayerViewStore::set_override(const std::string& original_name, std::vector<float> values) {
    const format::TensorInfo* info = base_->find(original_name);
    if (!info || original_name.rfind(hf_layer_prefix(layer_), 0) != 0)
        return make_error(ErrorCode::kBadInput,
                          "cannot override '" + original_name + "': not a tensor of layer " + std::to_string(layer_));
    if (int64_t(values.size()) != info->shape.n_elems())
        return make_error(ErrorCode::kBadInput, "override of '" + original_name + "' has " +
                                                    std::to_string(values.size()) + " values, the tensor " +
                                                    info->shape.to_string() + " has " +
                                                    std::to_string(info->shape.n_elems()));
    overrides_[original_name] = std::move(values);
    reindex();
    return {};
}

void LayerViewStore::clear_overrides() {
    overrides_.clear();
    reindex();
}

const format::TensorInfo* LayerViewStore::find(const std::string& name) const {
    for (const auto& t : infos_)
        if (t.name == name) return &t;
    return nullptr;
}

Result<TensorView> LayerViewStore::view(const std::string& name) const {
    auto it = to_base_.find(name);
    if (it == to_base_.end())
        return make_error(ErrorCode::kBadInput,
                          "tensor '" + name + "' is not in the view of layer " + std::to_string(layer_));
    if (auto o = overrides_.find(it->second); o != overrides_.end()) {
        const format::TensorInfo* info = base_->find(it->second);
        return TensorView::contiguous(const_cast<float*>(o->second.data()), DType::kF32, info->shape);
    }
    return base_->view(it->second);
}

LayerPass::LayerPass(const format::ModelConfig& config, ThreadPool* p, int64_t len)
    : config1(config), pool(p), seqlen(len) {
    config1.n_layers = 1;
}

Status LayerPass::pass(std::vector<float>& hidden, int64_t n_samples, bool in_place,
                       const model::LinearObserver& observer, const std::function<void(int64_t)>& after) {
    LOWBIT_ASSIGN_OR_RETURN(auto t, model::Transformer::create(view, config1, model::SourceFormat::kHf));
    t->set_linear_observer(observer);
    auto cache = t->make_cache(seqlen);
    const int64_t hsz = config1.hidden_size;
    std::vector<float> scratch(in_place ? 0 : size_t(seqlen * hsz));
    for (int64_t s = 0; s < n_samples; ++s) {
        float* x = hidden.data() + s * seqlen * hsz;
        if (!in_place) {
            std::memcpy(scratch.data(), x, scratch.size() * sizeof(float));
            x = scratch.data();
        }
        t->run_layer(0, x, seqlen, 0, cache, pool);
        if (after) after(s);
    }
    return {};
}

} // namespace lowbit::pipeline
