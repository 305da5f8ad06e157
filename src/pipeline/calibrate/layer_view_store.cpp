// SPDX-License-Identifier: MIT
// LayerViewStore: one decoder layer of an HF TensorStore renamed to layer 0, with f32 overrides.
#include "pipeline/calibrate/layer_view_store.h"

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

} // namespace lowbit::pipeline
