// SPDX-License-Identifier: MIT
// QuantizedStore (see quantized_store.h).
#include "model/quantized/quantized_store.h"

#include <fmt/format.h>

namespace lowbit::model::quantized {

QuantizedStore::QuantizedStore(std::shared_ptr<const format::TensorStore> base) : base_(std::move(base)) {
    finalize();
}

void QuantizedStore::hide(const std::string& name) {
    hidden_.insert(name);
    owned_.erase(name);
    owned_infos_.erase(name);
}

void QuantizedStore::put(const std::string& name, DType dtype, const Shape& shape, std::vector<uint8_t> bytes) {
    hidden_.erase(name);
    format::TensorInfo info;
    info.name = name;
    info.dtype = dtype;
    info.shape = shape;
    info.n_bytes = bytes.size();
    owned_[name] = std::move(bytes);
    owned_infos_[name] = info;
}

void QuantizedStore::finalize() {
    infos_.clear();
    index_.clear();
    for (const auto& info : base_->tensors())
        if (!hidden_.count(info.name) && !owned_infos_.count(info.name)) infos_.push_back(info);
    for (const auto& [name, info] : owned_infos_) infos_.push_back(info);
    for (size_t i = 0; i < infos_.size(); ++i) index_[infos_[i].name] = i;
}

const format::TensorInfo* QuantizedStore::find(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &infos_[it->second];
}

Result<TensorView> QuantizedStore::view(const std::string& name) const {
    if (!find(name)) return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}' is not in the model", name));
    const auto it = owned_.find(name);
    if (it == owned_.end()) return base_->view(name);
    const auto& info = owned_infos_.at(name);
    // Views are mutable by type, not by contract (TensorStore hands out read-only data).
    return TensorView::contiguous(const_cast<uint8_t*>(it->second.data()), info.dtype, info.shape);
}

} // namespace lowbit::model::quantized
