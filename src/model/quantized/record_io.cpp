// SPDX-License-Identifier: MIT
// Record helpers of the loader rows (see record_io.h).
#include "model/quantized/record_io.h"

#include "model/quantized/repack.h"
#include "model/weights.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

namespace lowbit::model::quantized {

std::vector<std::string> modules_with(const format::TensorStore& store, const std::string& marker) {
    std::vector<std::string> out;
    for (const auto& info : store.tensors()) {
        const std::string& n = info.name;
        if (n.size() > marker.size() && n.compare(n.size() - marker.size(), marker.size(), marker) == 0)
            out.push_back(n.substr(0, n.size() - marker.size()));
    }
    std::sort(out.begin(), out.end());
    return out;
}

Result<std::vector<scheme::TensorRecord>> read_records(const format::TensorStore& store, const std::string& prefix,
                                                       const std::function<bool(const std::string&)>& keep) {
    std::vector<scheme::TensorRecord> out;
    const std::string head = prefix + ".";
    for (const auto& info : store.tensors()) {
        if (info.name.compare(0, head.size(), head) != 0) continue;
        const std::string suffix = info.name.substr(head.size());
        if (!keep(suffix)) continue;
        LOWBIT_ASSIGN_OR_RETURN(TensorView v, store.view(info.name));
        if (dtype_is_quantized(v.dtype))
            return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}' has dtype {}, expected a plain type",
                                                                info.name, dtype_name(v.dtype)));
        scheme::TensorRecord r;
        r.suffix = suffix;
        r.dtype = v.dtype;
        r.shape = v.shape;
        r.bytes.resize(size_t(v.n_bytes()));
        if (!r.bytes.empty()) std::memcpy(r.bytes.data(), v.data, r.bytes.size());
        out.push_back(std::move(r));
    }
    return out;
}

void hide_records(QuantizedStore& store, const std::string& prefix, const std::vector<scheme::TensorRecord>& records) {
    for (const auto& r : records) {
        store.hide(prefix + "." + r.suffix);
        store.base().release(prefix + "." + r.suffix); // consumed: the file's pages leave the resident set
    }
}

void put_dense(QuantizedStore& store, const std::string& prefix, int64_t n_rows, int64_t n_cols,
               const std::vector<float>& values) {
    std::vector<uint8_t> bytes(values.size() * sizeof(float));
    if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    store.put(prefix + ".weight", DType::kF32, Shape{n_rows, n_cols}, std::move(bytes));
}

void put_packed(QuantizedStore& store, const std::string& prefix, PackedWeight packed) {
    store.put(prefix + ".weight", packed.dtype, Shape{packed.n_rows, packed.n_cols}, std::move(packed.bytes));
    if (packed.col_perm.empty()) return;
    std::vector<uint8_t> perm(packed.col_perm.size() * sizeof(int32_t));
    std::memcpy(perm.data(), packed.col_perm.data(), perm.size());
    store.put(prefix + "." + kColPermSuffix, DType::kI32, Shape{packed.n_cols}, std::move(perm));
}

Error module_error(const Error& e, const std::string& prefix) {
    return e.with_context(fmt::format("quantized module '{}'", prefix));
}

} // namespace lowbit::model::quantized
