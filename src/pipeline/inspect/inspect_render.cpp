// SPDX-License-Identifier: MIT
// Text and JSON renderings of an InspectReport.
#include "pipeline/inspect/inspect.h"

#include <algorithm>
#include <fmt/format.h>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lowbit::pipeline {
namespace {

// The layer a tensor name belongs to ("blk.N" in GGUF, "model.layers.N" in HF), or "" for the others.
std::string layer_of(const std::string& name) {
    for (const char* prefix : {"blk.", "model.layers."}) {
        const std::string p = prefix;
        if (name.compare(0, p.size(), p) != 0) continue;
        const size_t dot = name.find('.', p.size());
        return dot == std::string::npos ? "" : name.substr(0, dot);
    }
    return "";
}

// Per layer, the bits per weight of its 2-D tensors and their types — printed for models whose 2-D tensors have
// more than one type (mixed precision, e.g. `quantize --method mix`), as the allocation summary of the quantizer.
std::string layer_bpw_text(const InspectReport& r) {
    struct Layer {
        int64_t elems = 0;
        uint64_t bytes = 0;
        std::map<std::string, int> types;
    };
    std::vector<std::pair<std::string, Layer>> layers; // in file order
    std::map<std::string, int> types_2d;
    for (const auto& t : r.tensors) {
        if (t.shape.n_dims != 2) continue;
        const std::string type = std::string(dtype_name(t.dtype));
        ++types_2d[type];
        const std::string key = layer_of(t.name).empty() ? t.name : layer_of(t.name);
        auto it = std::find_if(layers.begin(), layers.end(), [&](const auto& l) { return l.first == key; });
        if (it == layers.end()) it = layers.insert(layers.end(), {key, Layer{}});
        it->second.elems += t.shape.n_elems();
        it->second.bytes += t.n_bytes;
        ++it->second.types[type];
    }
    if (types_2d.size() < 2) return "";
    std::string s = "\nbits per weight by layer (2-D tensors; mixed types):\n";
    for (const auto& [key, l] : layers) {
        std::string types;
        for (const auto& [t, n] : l.types) types += fmt::format("{}{} {}", types.empty() ? "" : ", ", n, t);
        s += fmt::format("  {:<40} {:7.3f} bpw  {}\n", key,
                         8.0 * double(l.bytes) / double(std::max<int64_t>(1, l.elems)), types);
    }
    return s;
}

using ojson = nlohmann::ordered_json;

ojson shape_json(const Shape& s) {
    ojson a = ojson::array();
    for (int i = 0; i < s.n_dims; ++i) a.push_back(s[i]);
    return a;
}

ojson config_json(const format::ModelConfig& c) {
    ojson j = ojson::object();
    j["hf_architecture"] = c.hf_architecture;
    j["arch"] = c.arch;
    j["vocab_size"] = c.vocab_size;
    j["hidden_size"] = c.hidden_size;
    j["intermediate_size"] = c.intermediate_size;
    j["n_layers"] = c.n_layers;
    j["n_heads"] = c.n_heads;
    j["n_kv_heads"] = c.n_kv_heads;
    j["head_dim"] = c.head_dim;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["rms_norm_eps"] = c.rms_norm_eps;
    j["rope_theta"] = c.rope_theta;
    j["rope_scaling"] = c.rope_scaling.type;
    j["tie_word_embeddings"] = c.tie_word_embeddings;
    j["attention_bias"] = c.attention_bias;
    return j;
}

std::string human_bytes(uint64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = static_cast<double>(b);
    int u = 0;
    while (x >= 1024 && u < 4) {
        x /= 1024;
        ++u;
    }
    return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.2f} {}", x, units[u]);
}

} // namespace

std::string inspect_report_json(const InspectReport& r) {
    ojson j = ojson::object();
    j["path"] = r.path;
    j["format"] = r.format;
    j["architecture"] = r.architecture;
    j["config"] = r.config ? config_json(*r.config) : ojson(nullptr);
    if (!r.config_error.empty()) j["config_error"] = r.config_error;
    j["n_params"] = r.n_params;
    j["n_tensors"] = r.tensors.size();
    j["tensor_bytes"] = r.tensor_bytes;
    j["file_bytes"] = r.file_bytes;
    j["bpw"] = r.bpw;
    if (!r.quant_method.empty()) j["quant_method"] = r.quant_method;
    j["bpw_2d"] = r.bpw_2d;
    ojson by_type = ojson::object();
    for (const auto& [k, t] : r.by_type)
        by_type[k] = ojson{{"n_tensors", t.n_tensors}, {"n_elems", t.n_elems}, {"bytes", t.n_bytes}};
    j["by_type"] = by_type;
    ojson mem = ojson::array();
    for (const auto& m : r.memory) mem.push_back(ojson{{"scheme", m.scheme}, {"bytes", m.n_bytes}, {"bpw", m.bpw}});
    j["memory"] = mem;
    ojson ts = ojson::array();
    for (const auto& t : r.tensors)
        ts.push_back(ojson{{"name", t.name},
                           {"shape", shape_json(t.shape)},
                           {"type", std::string(dtype_name(t.dtype))},
                           {"bytes", t.n_bytes}});
    j["tensors"] = ts;
    ojson md = ojson::object();
    for (const auto& [k, v] : r.metadata) {
        try {
            md[k] = ojson::parse(v);
        } catch (const ojson::exception&) {
            md[k] = v;
        }
    }
    j["metadata"] = md;
    return j.dump(2, ' ', false, nlohmann::detail::error_handler_t::replace) + "\n";
}

std::string inspect_report_text(const InspectReport& r) {
    std::string s = fmt::format("{} ({})\n", r.path, r.format);
    if (r.config) {
        const auto& c = *r.config;
        s += fmt::format("architecture: {} (arch {})\n", c.hf_architecture.empty() ? r.architecture : c.hf_architecture,
                         c.arch);
        s += fmt::format("layers {}, hidden {}, ff {}, heads {}, kv heads {}, head_dim {}, vocab {}, ctx {}\n",
                         c.n_layers, c.hidden_size, c.intermediate_size, c.n_heads, c.n_kv_heads, c.head_dim,
                         c.vocab_size, c.max_position_embeddings);
        s += fmt::format("rope theta {}{}, rms eps {}, tied embeddings {}, attention bias {}\n", c.rope_theta,
                         c.rope_scaling.type.empty() ? "" : " (scaling " + c.rope_scaling.type + ")", c.rms_norm_eps,
                         c.tie_word_embeddings ? "yes" : "no", c.attention_bias ? "yes" : "no");
    } else if (!r.architecture.empty() || !r.config_error.empty()) {
        s += fmt::format("architecture: {}{}\n", r.architecture,
                         r.config_error.empty() ? "" : " (" + r.config_error + ")");
    }
    s += fmt::format("parameters: {}   tensors: {}   tensor bytes: {} ({})   file: {}\n", r.n_params, r.tensors.size(),
                     r.tensor_bytes, human_bytes(r.tensor_bytes), human_bytes(r.file_bytes));
    if (!r.quant_method.empty())
        s += fmt::format("quantized: {} (parameters and bpw count the logical weights from config.json)\n",
                         r.quant_method);
    s += fmt::format("bits per weight: {:.4f} (all tensors), {:.4f} (2-D tensors)\n\n", r.bpw, r.bpw_2d);
    s += fmt::format("{:<48} {:<18} {:<8} {:>14}\n", "tensor", "shape", "type", "bytes");
    for (const auto& t : r.tensors)
        s += fmt::format("{:<48} {:<18} {:<8} {:>14}\n", t.name, t.shape.to_string(), dtype_name(t.dtype), t.n_bytes);
    s += fmt::format("\n{:<10} {:>8} {:>16} {:>14}\n", "type", "tensors", "elements", "bytes");
    for (const auto& [k, t] : r.by_type)
        s += fmt::format("{:<10} {:>8} {:>16} {:>14}\n", k, t.n_tensors, t.n_elems, t.n_bytes);
    s += layer_bpw_text(r);
    s += fmt::format("\nmemory for {} parameters (estimates; see 'lowbit inspect --help'):\n", r.n_params);
    for (const auto& m : r.memory)
        s += fmt::format("  {:<28} {:>8.4f} bpw  {:>12}\n", m.scheme, m.bpw, human_bytes(m.n_bytes));
    return s;
}

} // namespace lowbit::pipeline
