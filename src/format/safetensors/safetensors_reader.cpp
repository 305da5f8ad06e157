// SPDX-License-Identifier: MIT
// safetensors reader: header validation (the Rust crate's rules) and the single/sharded TensorStore.
#include "format/safetensors/safetensors_reader.h"

#include "core/checked.h"
#include "core/log.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

namespace lowbit::safetensors {
namespace {

using json = nlohmann::json;

Error bad(const std::string& label, const std::string& msg) {
    return make_error(ErrorCode::kBadInput, "safetensors file '" + label + "': " + msg);
}

// nlohmann's messages quote the offending input; escape bytes that are not printable ASCII.
std::string printable(const std::string& s) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

uint64_t read_u64_le(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

// Parses one tensor entry of the header into `info` (offsets relative to the data section).
Status parse_entry(const std::string& label, const std::string& name, const json& e, format::TensorInfo& info) {
    const std::string where = "tensor '" + name + "'";
    if (!e.is_object()) return bad(label, where + ": entry is not a JSON object");
    for (const char* key : {"dtype", "shape", "data_offsets"})
        if (!e.contains(key)) return bad(label, where + ": missing field '" + key + "'");
    if (!e["dtype"].is_string()) return bad(label, where + ": 'dtype' is not a string");
    const std::string dt = e["dtype"].get<std::string>();
    const auto dtype = dtype_from_safetensors(dt);
    if (!dtype) {
        if (dt.rfind("F8", 0) == 0 || dt.rfind("F6", 0) == 0 || dt.rfind("F4", 0) == 0 || dt == "E8M0")
            return make_error(ErrorCode::kUnsupported, "safetensors file '" + label + "': " + where + " has dtype " +
                                                           dt + ", which lowbit does not support (sub-16-bit floats)");
        return bad(label, where + ": unknown dtype '" + dt + "'");
    }
    const json& shape = e["shape"];
    if (!shape.is_array()) return bad(label, where + ": 'shape' is not an array");
    if (shape.size() > static_cast<size_t>(kMaxDims))
        return make_error(ErrorCode::kUnsupported,
                          "safetensors file '" + label + "': " + where + " has " + std::to_string(shape.size()) +
                              " dimensions (lowbit handles at most " + std::to_string(kMaxDims) + ")");
    info.name = name;
    info.dtype = *dtype;
    info.shape = Shape{};
    for (const json& d : shape) {
        if (!d.is_number_unsigned()) return bad(label, where + ": shape entries must be non-negative integers");
        const uint64_t v = d.get<uint64_t>();
        if (v > static_cast<uint64_t>(INT64_MAX)) return bad(label, where + ": shape entry too large");
        info.shape.dims[static_cast<size_t>(info.shape.n_dims++)] = static_cast<int64_t>(v);
    }
    const json& offs = e["data_offsets"];
    if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
        return bad(label, where + ": 'data_offsets' must be [begin, end] non-negative integers");
    const uint64_t begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
    if (begin > end)
        return bad(label, where + ": data_offsets begin " + std::to_string(begin) + " > end " + std::to_string(end));
    const auto n_elems = checked_product(info.shape.dims.begin(), info.shape.dims.begin() + info.shape.n_dims);
    const auto n_bytes =
        n_elems ? checked_mul(*n_elems, static_cast<uint64_t>(dtype_block_bytes(*dtype))) : std::nullopt;
    if (!n_bytes) return bad(label, where + ": shape " + info.shape.to_string() + " overflows 64-bit size");
    if (*n_bytes != end - begin)
        return bad(label, where + ": shape " + info.shape.to_string() + " of " + dt + " needs " +
                              std::to_string(*n_bytes) + " bytes but data_offsets span " + std::to_string(end - begin));
    info.offset_bytes = begin;
    info.n_bytes = end - begin;
    return ok_status();
}

} // namespace

Result<Header> parse_header(const uint8_t* data, uint64_t size, const std::string& label, int file_index) {
    if (size < 8)
        return bad(label, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
    const uint64_t n = read_u64_le(data);
    if (n > kMaxHeaderBytes)
        return bad(label, "header length " + std::to_string(n) +
                              " exceeds the 100000000-byte limit (not a safetensors file?)");
    if (n > size - 8)
        return bad(label, "header length " + std::to_string(n) + " exceeds the file (" + std::to_string(size) +
                              " bytes; truncated download?)");
    // nlohmann keeps the last of duplicate keys silently, so a parser callback rejects them at depth 1.
    std::set<std::string> seen;
    std::string duplicate;
    json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
        if (ev == json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second &&
            duplicate.empty())
            duplicate = parsed.get<std::string>();
        return true;
    };
    json j;
    try {
        j = json::parse(data + 8, data + 8 + n, cb);
    } catch (const json::exception& e) {
        return bad(label, "header is not valid JSON: " + printable(e.what()));
    }
    if (!duplicate.empty()) return bad(label, "tensor name '" + duplicate + "' appears twice in the header");
    if (!j.is_object()) return bad(label, "header is not a JSON object");
    Header h;
    h.data_start = 8 + n;
    const uint64_t data_bytes = size - h.data_start;
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "__metadata__") {
            if (!it->is_object()) return bad(label, "__metadata__ is not a JSON object");
            for (auto m = it->begin(); m != it->end(); ++m) {
                if (!m->is_string()) return bad(label, "__metadata__ value '" + m.key() + "' is not a string");
                h.metadata[m.key()] = m->get<std::string>();
            }
            continue;
        }
        format::TensorInfo info;
        info.file_index = file_index;
        LOWBIT_TRY(parse_entry(label, it.key(), *it, info));
        h.tensors.push_back(std::move(info));
    }
    std::sort(h.tensors.begin(), h.tensors.end(), [](const auto& a, const auto& b) {
        return a.offset_bytes != b.offset_bytes ? a.offset_bytes < b.offset_bytes : a.n_bytes < b.n_bytes;
    });
    uint64_t expected = 0;
    for (const auto& t : h.tensors) {
        if (t.offset_bytes < expected)
            return bad(label, "tensor '" + t.name + "' at data offset " + std::to_string(t.offset_bytes) +
                                  " overlaps the previous tensor (which ends at " + std::to_string(expected) + ")");
        if (t.offset_bytes > expected)
            return bad(label, "hole of " + std::to_string(t.offset_bytes - expected) + " bytes before tensor '" +
                                  t.name + "' at data offset " + std::to_string(expected) +
                                  " (safetensors forbids holes)");
        const uint64_t end = t.offset_bytes + t.n_bytes;
        if (end > data_bytes)
            return bad(label, "tensor '" + t.name + "' needs " + std::to_string(t.n_bytes) + " bytes at data offset " +
                                  std::to_string(t.offset_bytes) + " but the data section ends at " +
                                  std::to_string(data_bytes) + " (truncated download?)");
        expected = end;
    }
    if (expected != data_bytes)
        return bad(label, "data section has " + std::to_string(data_bytes) + " bytes but the tensors cover " +
                              std::to_string(expected) + " (trailing bytes or missing tensors)");
    for (auto& t : h.tensors) t.offset_bytes += h.data_start;
    return h;
}

Status Store::add_file(const uint8_t* data, uint64_t size, const std::string& label, int file_index) {
    LOWBIT_ASSIGN_OR_RETURN(Header h, parse_header(data, size, label, file_index));
    for (auto& t : h.tensors) {
        if (auto it = by_name_.find(t.name); it != by_name_.end())
            return bad(label, "tensor '" + t.name + "' also appears in '" +
                                  paths_[static_cast<size_t>(tensors_[it->second].file_index)] + "'");
        by_name_[t.name] = tensors_.size();
        tensors_.push_back(std::move(t));
    }
    for (auto& [k, v] : h.metadata) metadata_.emplace(k, v);
    bases_.push_back(data);
    return ok_status();
}

Result<std::unique_ptr<Store>> Store::from_buffer(const uint8_t* data, uint64_t size, const std::string& label) {
    std::unique_ptr<Store> s(new Store());
    s->paths_.push_back(label);
    LOWBIT_TRY(s->add_file(data, size, label, 0));
    return s;
}

Result<std::unique_ptr<Store>> Store::open_file(const std::string& path) {
    LOWBIT_ASSIGN_OR_RETURN(auto mf, MappedFile::open(path));
    std::unique_ptr<Store> s(new Store());
    s->paths_.push_back(path);
    LOWBIT_TRY(s->add_file(mf->data(), mf->size(), path, 0));
    s->files_.push_back(std::move(mf));
    return s;
}

Result<std::unique_ptr<Store>> Store::open_index(const std::string& index_path) {
    LOWBIT_ASSIGN_OR_RETURN(std::string text, read_file_to_string(index_path, kMaxHeaderBytes));
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        return make_error(ErrorCode::kBadInput,
                          "safetensors index '" + index_path + "' is not valid JSON: " + printable(e.what()));
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
        return make_error(ErrorCode::kBadInput, "safetensors index '" + index_path + "' has no 'weight_map' object");
    const std::string dir =
        index_path.find('/') == std::string::npos ? std::string(".") : index_path.substr(0, index_path.rfind('/'));
    std::unique_ptr<Store> s(new Store());
    if (j.contains("metadata") && j["metadata"].is_object())
        for (auto it = j["metadata"].begin(); it != j["metadata"].end(); ++it)
            s->index_metadata_[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
    std::vector<std::string> shards; // in order of first appearance
    std::map<std::string, std::string> wanted;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        if (!it->is_string())
            return make_error(ErrorCode::kBadInput, "safetensors index '" + index_path + "': weight_map entry '" +
                                                        it.key() + "' is not a file name");
        const std::string f = it->get<std::string>();
        if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
            return make_error(ErrorCode::kBadInput, "safetensors index '" + index_path + "': weight_map entry '" +
                                                        it.key() + "' names '" + f +
                                                        "', not a file in the same folder");
        if (std::find(shards.begin(), shards.end(), f) == shards.end()) shards.push_back(f);
        wanted[it.key()] = f;
    }
    std::sort(shards.begin(), shards.end());
    for (size_t i = 0; i < shards.size(); ++i) {
        const std::string p = dir + "/" + shards[i];
        if (!file_exists(p))
            return make_error(ErrorCode::kBadInput, "safetensors index '" + index_path + "' names shard '" + shards[i] +
                                                        "' but " + p + " does not exist (incomplete download?)");
        LOWBIT_ASSIGN_OR_RETURN(auto mf, MappedFile::open(p));
        s->paths_.push_back(p);
        LOWBIT_TRY(s->add_file(mf->data(), mf->size(), p, static_cast<int>(i)));
        s->files_.push_back(std::move(mf));
    }
    for (const auto& [name, shard] : wanted) {
        const format::TensorInfo* t = s->find(name);
        if (!t || s->paths_[static_cast<size_t>(t->file_index)] != dir + "/" + shard)
            return make_error(ErrorCode::kBadInput, "safetensors index '" + index_path + "' maps tensor '" + name +
                                                        "' to '" + shard + "' but that shard does not contain it");
    }
    for (const auto& t : s->tensors_)
        if (!wanted.count(t.name))
            log_warn("safetensors shard '{}' holds tensor '{}' that the index does not list",
                     s->paths_[static_cast<size_t>(t.file_index)], t.name);
    return s;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
    if (is_directory(path)) {
        if (file_exists(path + "/model.safetensors.index.json"))
            return open_index(path + "/model.safetensors.index.json");
        if (file_exists(path + "/model.safetensors")) return open_file(path + "/model.safetensors");
        return make_error(ErrorCode::kBadInput,
                          "folder '" + path + "' has neither model.safetensors nor model.safetensors.index.json");
    }
    if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) return open_index(path);
    return open_file(path);
}

const format::TensorInfo* Store::find(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

Result<TensorView> Store::view(const std::string& name) const {
    const format::TensorInfo* t = find(name);
    if (!t)
        return make_error(ErrorCode::kBadInput, "tensor '" + name + "' is not in " + (paths_.empty() ? "" : paths_[0]));
    const uint8_t* base = bases_[static_cast<size_t>(t->file_index)];
    return TensorView::contiguous(const_cast<uint8_t*>(base + t->offset_bytes), t->dtype, t->shape);
}

void Store::release(const std::string& name) const {
    const format::TensorInfo* t = find(name);
    if (!t || size_t(t->file_index) >= files_.size() || !files_[size_t(t->file_index)]) return;
    const MappedFile& f = *files_[size_t(t->file_index)];
    const uint8_t* p = bases_[size_t(t->file_index)] + t->offset_bytes;
    f.release(uint64_t(p - f.data()), t->n_bytes);
}

} // namespace lowbit::safetensors
