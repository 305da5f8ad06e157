// SPDX-License-Identifier: MIT
// MemoryStore and the synthetic model generator (see memory_store.h).
#include "model/memory_store.h"

#include "model/weights.h"
#include "scheme/scheme_list.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <random>

namespace lowbit::model {

Status MemoryStore::add(const std::string& name, DType dtype, const Shape& shape, const std::vector<float>& values) {
    const auto* sch = scheme::find_scheme(dtype);
    if (!sch || !sch->quantize_row)
        return make_error(ErrorCode::kUnsupported, fmt::format("cannot encode '{}' as {}", name, dtype_name(dtype)));
    const int64_t cols = shape.n_cols(), rows = shape.n_rows();
    const auto row_bytes = dtype_row_bytes(dtype, uint64_t(cols));
    if (!row_bytes || values.size() != size_t(rows * cols))
        return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}' {}: {} values do not fit {}", name,
                                                            shape.to_string(), values.size(), dtype_name(dtype)));
    std::vector<uint8_t> bytes(*row_bytes * uint64_t(rows));
    for (int64_t r = 0; r < rows; ++r)
        sch->quantize_row(values.data() + r * cols, bytes.data() + uint64_t(r) * *row_bytes, cols, nullptr);
    return add_raw(name, dtype, shape, std::move(bytes));
}

Status MemoryStore::add_raw(const std::string& name, DType dtype, const Shape& shape, std::vector<uint8_t> bytes) {
    bytes_[name] = std::move(bytes);
    format::TensorInfo info;
    info.name = name;
    info.dtype = dtype;
    info.shape = shape;
    info.n_bytes = bytes_[name].size();
    infos_.erase(std::remove_if(infos_.begin(), infos_.end(), [&](const auto& i) { return i.name == name; }),
                 infos_.end());
    infos_.push_back(info);
    return ok_status();
}

void MemoryStore::remove(const std::string& name) {
    bytes_.erase(name);
    infos_.erase(std::remove_if(infos_.begin(), infos_.end(), [&](const auto& i) { return i.name == name; }),
                 infos_.end());
}

const format::TensorInfo* MemoryStore::find(const std::string& name) const {
    for (const auto& i : infos_)
        if (i.name == name) return &i;
    return nullptr;
}

Result<TensorView> MemoryStore::view(const std::string& name) const {
    const auto* info = find(name);
    if (!info) return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}' is not in the store", name));
    auto& b = const_cast<std::vector<uint8_t>&>(bytes_.at(name)); // views are mutable by type, not by contract
    return TensorView::contiguous(b.data(), info->dtype, info->shape);
}

Result<std::shared_ptr<MemoryStore>> make_synthetic_model(const format::ModelConfig& config, const ArchDesc& arch,
                                                          SourceFormat source, DType dtype, uint32_t seed) {
    LOWBIT_ASSIGN_OR_RETURN(const format::ModelConfig c, normalize_config(config));
    auto store = std::make_shared<MemoryStore>();
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto rand = [&](int64_t n, float mean, float stddev) {
        std::vector<float> v(static_cast<size_t>(n));
        for (auto& x : v) x = mean + stddev * normal(rng);
        return v;
    };
    using R = TensorRole;
    auto matrix = [&](R role, int64_t il, int64_t rows, int64_t cols, float stddev) {
        return store->add(tensor_name(arch, source, role, il), dtype, Shape{rows, cols},
                          rand(rows * cols, 0.0f, stddev));
    };
    auto vec = [&](R role, int64_t il, int64_t n, float mean, float stddev) {
        return store->add(tensor_name(arch, source, role, il), DType::kF32, Shape{n}, rand(n, mean, stddev));
    };
    const int64_t q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim, h = c.hidden_size;
    const float s_h = 1.0f / std::sqrt(float(h)), s_q = 1.0f / std::sqrt(float(q_dim));
    LOWBIT_TRY(matrix(R::kTokenEmbd, 0, c.vocab_size, h, 1.0f));
    LOWBIT_TRY(vec(R::kOutputNorm, 0, h, 1.0f, 0.1f));
    if (!c.tie_word_embeddings) LOWBIT_TRY(matrix(R::kOutput, 0, c.vocab_size, h, s_h));
    for (int64_t il = 0; il < c.n_layers; ++il) {
        LOWBIT_TRY(vec(R::kAttnNorm, il, h, 1.0f, 0.1f));
        LOWBIT_TRY(matrix(R::kAttnQ, il, q_dim, h, s_h));
        LOWBIT_TRY(matrix(R::kAttnK, il, kv_dim, h, s_h));
        LOWBIT_TRY(matrix(R::kAttnV, il, kv_dim, h, s_h));
        LOWBIT_TRY(matrix(R::kAttnOut, il, h, q_dim, s_q));
        if (arch.quirks.qkv_bias || c.attention_bias) {
            LOWBIT_TRY(vec(R::kAttnQBias, il, q_dim, 0.0f, 0.1f));
            LOWBIT_TRY(vec(R::kAttnKBias, il, kv_dim, 0.0f, 0.1f));
            LOWBIT_TRY(vec(R::kAttnVBias, il, kv_dim, 0.0f, 0.1f));
        }
        LOWBIT_TRY(vec(R::kFfnNorm, il, h, 1.0f, 0.1f));
        LOWBIT_TRY(matrix(R::kFfnGate, il, c.intermediate_size, h, s_h));
        LOWBIT_TRY(matrix(R::kFfnUp, il, c.intermediate_size, h, s_h));
        LOWBIT_TRY(matrix(R::kFfnDown, il, h, c.intermediate_size, 1.0f / std::sqrt(float(c.intermediate_size))));
    }
    return store;
}

} // namespace lowbit::model
