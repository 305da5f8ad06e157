// SPDX-License-Identifier: MIT
// safetensors writer: header JSON (ordered: __metadata__ first, then tensors by offset), padding, sharding.
#include "format/safetensors/safetensors_writer.h"

#include "core/checked.h"
#include "core/file.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

namespace lowbit::safetensors {
namespace {

using ojson = nlohmann::ordered_json;

Result<uint64_t> tensor_bytes(const TensorToWrite& t) {
    const auto n = checked_product(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.n_dims);
    const auto b = n ? checked_mul(*n, static_cast<uint64_t>(dtype_block_bytes(t.dtype))) : std::nullopt;
    if (!b)
        return make_error(ErrorCode::kUsage, "tensor '" + t.name + "': shape " + t.shape.to_string() + " overflows");
    return *b;
}

std::string pad5(size_t i) {
    std::string s = std::to_string(i);
    return std::string(s.size() < 5 ? 5 - s.size() : 0, '0') + s;
}

// Writes one file holding tensors[idx...] in the given order.
Status write_one(const std::string& path, const std::vector<const TensorToWrite*>& ts,
                 const std::vector<uint64_t>& sizes, const std::map<std::string, std::string>& metadata) {
    ojson h = ojson::object();
    if (!metadata.empty()) {
        ojson m = ojson::object();
        for (const auto& [k, v] : metadata) m[k] = v;
        h["__metadata__"] = m;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < ts.size(); ++i) {
        ojson e = ojson::object();
        e["dtype"] = std::string(dtype_traits(ts[i]->dtype).safetensors_name);
        ojson shape = ojson::array();
        for (int d = 0; d < ts[i]->shape.n_dims; ++d) shape.push_back(ts[i]->shape[d]);
        e["shape"] = shape;
        e["data_offsets"] = ojson::array({off, off + sizes[i]});
        h[ts[i]->name] = e;
        off += sizes[i];
    }
    std::string text;
    try {
        text = h.dump(-1, ' ', false, nlohmann::detail::error_handler_t::strict);
    } catch (const ojson::exception& e) {
        return make_error(ErrorCode::kUsage,
                          "safetensors '" + path + "': a tensor name or metadata value is not valid UTF-8");
    }
    text.append((8 - text.size() % 8) % 8, ' ');
    LOWBIT_ASSIGN_OR_RETURN(auto w, AtomicWriter::create(path));
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
    LOWBIT_TRY(w->write(len, 8));
    LOWBIT_TRY(w->write(text));
    for (size_t i = 0; i < ts.size(); ++i) {
        const uint64_t start = w->offset();
        if (ts[i]->produce) {
            LOWBIT_TRY(ts[i]->produce([&](const void* p, uint64_t n) { return w->write(p, n); }));
        } else if (sizes[i] > 0) {
            LOWBIT_TRY(w->write(ts[i]->data, sizes[i]));
        }
        if (w->offset() - start != sizes[i])
            return make_error(ErrorCode::kInternal, "tensor '" + ts[i]->name + "': producer wrote " +
                                                        std::to_string(w->offset() - start) + " bytes, expected " +
                                                        std::to_string(sizes[i]));
    }
    return w->commit();
}

} // namespace

Result<std::vector<std::string>> write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                                                   const WriteOptions& options) {
    std::vector<const TensorToWrite*> order;
    std::set<std::string> names;
    for (const auto& t : tensors) {
        if (t.name.empty() || t.name == "__metadata__")
            return make_error(ErrorCode::kUsage, "safetensors: invalid tensor name '" + t.name + "'");
        if (!names.insert(t.name).second)
            return make_error(ErrorCode::kUsage, "safetensors: tensor name '" + t.name + "' given twice");
        if (dtype_traits(t.dtype).safetensors_name.empty())
            return make_error(ErrorCode::kUsage, "safetensors: tensor '" + t.name + "' has dtype " +
                                                     std::string(dtype_name(t.dtype)) +
                                                     ", which safetensors cannot store");
        if (!t.data && !t.produce && t.shape.n_elems() != 0)
            return make_error(ErrorCode::kUsage,
                              "safetensors: tensor '" + t.name + "' has neither data nor a producer");
        order.push_back(&t);
    }
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->name < b->name; });
    std::vector<uint64_t> sizes;
    uint64_t total = 0;
    for (auto* t : order) {
        LOWBIT_ASSIGN_OR_RETURN(uint64_t b, tensor_bytes(*t));
        sizes.push_back(b);
        total += b;
    }
    // Greedy shards in name order.
    std::vector<std::vector<size_t>> shards(1);
    uint64_t cur = 0;
    for (size_t i = 0; i < order.size(); ++i) {
        if (options.max_shard_bytes > 0 && !shards.back().empty() && cur + sizes[i] > options.max_shard_bytes) {
            shards.emplace_back();
            cur = 0;
        }
        shards.back().push_back(i);
        cur += sizes[i];
    }
    auto subset = [&](const std::vector<size_t>& idx, std::vector<const TensorToWrite*>& ts,
                      std::vector<uint64_t>& sz) {
        for (size_t i : idx) {
            ts.push_back(order[i]);
            sz.push_back(sizes[i]);
        }
    };
    if (shards.size() == 1) {
        std::vector<const TensorToWrite*> ts;
        std::vector<uint64_t> sz;
        subset(shards[0], ts, sz);
        LOWBIT_TRY(write_one(path, ts, sz, options.metadata));
        return std::vector<std::string>{path};
    }
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    std::string stem = slash == std::string::npos ? path : path.substr(slash + 1);
    if (stem.size() > 12 && stem.compare(stem.size() - 12, 12, ".safetensors") == 0) stem.resize(stem.size() - 12);
    std::vector<std::string> written;
    ojson weight_map = ojson::object();
    for (size_t s = 0; s < shards.size(); ++s) {
        const std::string file = stem + "-" + pad5(s + 1) + "-of-" + pad5(shards.size()) + ".safetensors";
        std::vector<const TensorToWrite*> ts;
        std::vector<uint64_t> sz;
        subset(shards[s], ts, sz);
        LOWBIT_TRY(write_one(dir + file, ts, sz, options.metadata));
        for (auto* t : ts) weight_map[t->name] = file;
        written.push_back(dir + file);
    }
    ojson index = ojson::object();
    index["metadata"] = ojson::object({{"total_size", total}});
    index["weight_map"] = weight_map;
    const std::string index_path = dir + stem + ".safetensors.index.json";
    LOWBIT_ASSIGN_OR_RETURN(auto w, AtomicWriter::create(index_path));
    LOWBIT_TRY(w->write(index.dump(2) + "\n"));
    LOWBIT_TRY(w->commit());
    written.push_back(index_path);
    return written;
}

} // namespace lowbit::safetensors
