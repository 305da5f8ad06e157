// SPDX-License-Identifier: MIT
// inspect_model: open an HF folder / safetensors / GGUF, tabulate tensors, totals, bpw and the memory table.
#include "pipeline/inspect/inspect.h"

#include "core/file.h"
#include "format/gguf/gguf_file.h"
#include "format/gguf/gguf_model.h"
#include "format/hf/hf_model.h"
#include "format/safetensors/safetensors_reader.h"

#include <cstring>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace lowbit::pipeline {
namespace {

bool is_param(const std::string& name) {
    return name != "rope_freqs.weight" && name.find("rotary_emb.inv_freq") == std::string::npos;
}

uint64_t ceil_div(uint64_t a, uint64_t b) {
    return (a + b - 1) / b;
}

// Bits of one 2-D tensor [n, k] under a scheme (see the table in inspect.h).
using Bits2d = uint64_t (*)(uint64_t n, uint64_t k);

uint64_t gguf_bits(DType t, uint64_t n, uint64_t k) {
    const auto row = dtype_row_bytes(t, k);
    if (!row) return n * k * 16; // llama.cpp falls back for rows that are not whole blocks
    return n * *row * 8;
}

struct MemoryScheme {
    const char* name;
    Bits2d bits;
};

const MemoryScheme kSchemes[] = {
    {"INT8 row-wise (LLM.int8)", [](uint64_t n, uint64_t k) { return 8 * n * k + 32 * n; }},
    {"NF4 (block 64, f32 absmax)", [](uint64_t n, uint64_t k) { return 4 * n * k + 32 * ceil_div(n * k, 64); }},
    {"NF4 + double quant",
     [](uint64_t n, uint64_t k) {
         const uint64_t blocks = ceil_div(n * k, 64);
         return 4 * n * k + 8 * blocks + 32 * ceil_div(blocks, 256);
     }},
    {"INT4 g128 (GPTQ)", [](uint64_t n, uint64_t k) { return 4 * n * k + 20 * n * ceil_div(k, 128) + 32 * k; }},
    {"GGUF Q8_0", [](uint64_t n, uint64_t k) { return gguf_bits(DType::kQ8_0, n, k); }},
    {"GGUF Q6_K", [](uint64_t n, uint64_t k) { return gguf_bits(DType::kQ6_K, n, k); }},
    {"GGUF Q5_K", [](uint64_t n, uint64_t k) { return gguf_bits(DType::kQ5_K, n, k); }},
    {"GGUF Q4_K", [](uint64_t n, uint64_t k) { return gguf_bits(DType::kQ4_K, n, k); }},
    {"GGUF Q4_0", [](uint64_t n, uint64_t k) { return gguf_bits(DType::kQ4_0, n, k); }},
    {"GGUF Q3_K", [](uint64_t n, uint64_t k) { return gguf_bits(DType::kQ3_K, n, k); }},
    {"GGUF Q2_K", [](uint64_t n, uint64_t k) { return gguf_bits(DType::kQ2_K, n, k); }},
};

// The logical weights of a Llama-family model (names are informative only): what a quantized directory stores
// in packed form. Used for parameter counts and memory estimates of quantized HF directories.
std::vector<InspectTensor> logical_tensors(const format::ModelConfig& c) {
    const int64_t h = c.hidden_size, hd = c.head_dim > 0 ? c.head_dim : (c.n_heads ? h / c.n_heads : 0);
    const int64_t q = c.n_heads * hd, kv = (c.n_kv_heads > 0 ? c.n_kv_heads : c.n_heads) * hd;
    std::vector<InspectTensor> out = {{"model.embed_tokens.weight", Shape{c.vocab_size, h}, DType::kF32, 0},
                                      {"model.norm.weight", Shape{h}, DType::kF32, 0}};
    if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", Shape{c.vocab_size, h}, DType::kF32, 0});
    for (int64_t l = 0; l < c.n_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        for (const auto& [name, shape] :
             std::vector<std::pair<std::string, Shape>>{{"input_layernorm.weight", Shape{h}},
                                                        {"post_attention_layernorm.weight", Shape{h}},
                                                        {"self_attn.q_proj.weight", Shape{q, h}},
                                                        {"self_attn.k_proj.weight", Shape{kv, h}},
                                                        {"self_attn.v_proj.weight", Shape{kv, h}},
                                                        {"self_attn.o_proj.weight", Shape{h, q}},
                                                        {"mlp.gate_proj.weight", Shape{c.intermediate_size, h}},
                                                        {"mlp.up_proj.weight", Shape{c.intermediate_size, h}},
                                                        {"mlp.down_proj.weight", Shape{h, c.intermediate_size}}})
            out.push_back({p + name, shape, DType::kF32, 0});
        if (c.attention_bias)
            for (const auto& [name, n] : std::vector<std::pair<std::string, int64_t>>{
                     {"self_attn.q_proj.bias", q}, {"self_attn.k_proj.bias", kv}, {"self_attn.v_proj.bias", kv}})
                out.push_back({p + name, Shape{n}, DType::kF32, 0});
    }
    return out;
}

void add_memory_rows(InspectReport& r, const std::vector<InspectTensor>& weights) {
    uint64_t elems = 0;
    for (const auto& t : weights)
        if (is_param(t.name)) elems += static_cast<uint64_t>(t.shape.n_elems());
    auto row = [&](const std::string& name, uint64_t bits) {
        r.memory.push_back({name, ceil_div(bits, 8), elems ? double(bits) / double(elems) : 0.0});
    };
    row("FP32", 32 * elems);
    row("FP16/BF16", 16 * elems);
    for (const auto& s : kSchemes) {
        uint64_t bits = 0;
        for (const auto& t : weights) {
            if (!is_param(t.name)) continue;
            const auto n_el = static_cast<uint64_t>(t.shape.n_elems());
            if (t.shape.n_dims == 2)
                bits += s.bits(static_cast<uint64_t>(t.shape[0]), static_cast<uint64_t>(t.shape[1]));
            else
                bits += 32 * n_el;
        }
        row(s.name, bits);
    }
}

void summarize(InspectReport& r) {
    uint64_t bits = 0, elems = 0, bits2 = 0, elems2 = 0;
    for (const auto& t : r.tensors) {
        auto& tot = r.by_type[std::string(dtype_name(t.dtype))];
        tot.n_tensors += 1;
        tot.n_elems += t.shape.n_elems();
        tot.n_bytes += t.n_bytes;
        r.tensor_bytes += t.n_bytes;
        if (is_param(t.name)) r.n_params += t.shape.n_elems();
        bits += 8 * t.n_bytes;
        elems += static_cast<uint64_t>(t.shape.n_elems());
        if (t.shape.n_dims == 2) {
            bits2 += 8 * t.n_bytes;
            elems2 += static_cast<uint64_t>(t.shape.n_elems());
        }
    }
    r.bpw = elems ? double(bits) / double(elems) : 0.0;
    r.bpw_2d = elems2 ? double(bits2) / double(elems2) : 0.0;
    if (!r.quant_method.empty() && r.config) { // packed records: count the logical weights instead
        const auto logical = logical_tensors(*r.config);
        r.n_params = 0;
        for (const auto& t : logical) r.n_params += t.shape.n_elems();
        r.bpw = r.n_params ? 8.0 * double(r.tensor_bytes) / double(r.n_params) : 0.0;
        r.bpw_2d = r.bpw;
        add_memory_rows(r, logical);
        return;
    }
    add_memory_rows(r, r.tensors);
}

void add_tensors(InspectReport& r, const format::TensorStore& s) {
    for (const auto& t : s.tensors()) r.tensors.push_back({t.name, t.shape, t.dtype, t.n_bytes});
    for (const auto& p : s.paths())
        if (auto sz = file_size(p); sz.ok()) r.file_bytes += *sz;
}

std::string summarize_value(const gguf::Value& v) {
    if (const gguf::Array* a = v.as_array(); a && a->items.size() > 16)
        return fmt::format("\"[{} x {}]\"", gguf::value_type_name(a->elem_type), a->items.size());
    std::string s = v.to_json();
    if (s.size() > 200) return fmt::format("\"<{} chars>\"", s.size());
    return s;
}

Result<InspectReport> inspect_gguf(const std::string& path) {
    LOWBIT_ASSIGN_OR_RETURN(auto f, gguf::File::open(path));
    InspectReport r;
    r.path = path;
    r.format = "gguf";
    r.architecture = f->get_string("general.architecture").value_or("");
    auto cfg = gguf::config_from_gguf(*f);
    if (cfg.ok())
        r.config = *cfg;
    else if (cfg.error().code == ErrorCode::kBadInput && gguf::is_supported_arch(r.architecture))
        return cfg.error(); // a llama/qwen2 model with missing or bad hyper-parameters: exit 3, as for an HF folder
    else
        r.config_error = cfg.error().message; // not a model lowbit runs (imatrix, other architectures): still shown
    for (const auto& kv : f->kvs()) r.metadata.emplace_back(kv.key, summarize_value(kv.value));
    add_tensors(r, *f);
    r.file_bytes = f->file_size();
    summarize(r);
    return r;
}

Result<InspectReport> inspect_safetensors(const std::string& path, bool hf_dir) {
    InspectReport r;
    r.path = path;
    r.format = hf_dir ? "hf" : "safetensors";
    if (hf_dir) {
        auto cfg = hf::parse_hf_config(path);
        if (!cfg.ok() && cfg.error().code != ErrorCode::kUnsupported) return cfg.error();
        if (cfg.ok()) {
            r.config = *cfg;
            r.architecture = cfg->hf_architecture;
            if (auto text = read_file_to_string(path + "/config.json"); text.ok()) {
                const auto j = nlohmann::json::parse(*text, nullptr, false);
                if (j.is_object() && j.contains("quantization_config") && j["quantization_config"].is_object())
                    r.quant_method = j["quantization_config"].value("quant_method", std::string("unknown"));
            }
        } else {
            r.config_error = cfg.error().message;
        }
    }
    LOWBIT_ASSIGN_OR_RETURN(auto store, safetensors::Store::open(path));
    for (const auto& [k, v] : store->metadata()) r.metadata.emplace_back(k, "\"" + v + "\"");
    add_tensors(r, *store);
    summarize(r);
    return r;
}

} // namespace

Result<InspectReport> inspect_model(const std::string& path) {
    if (is_directory(path)) {
        if (!hf::is_hf_model_dir(path))
            return make_error(ErrorCode::kBadInput,
                              "'" + path + "' is a folder without config.json (not a Hugging Face model)");
        return inspect_safetensors(path, true);
    }
    if (!file_exists(path)) // kIo (exit 1) like every other command's open failure
        return make_error(ErrorCode::kIo, "cannot open '" + path + "': no such file or directory");
    LOWBIT_ASSIGN_OR_RETURN(auto mf, MappedFile::open(path));
    if (mf->size() >= 4 && std::memcmp(mf->data(), "GGUF", 4) == 0) return inspect_gguf(path);
    if (path.ends_with(".safetensors") || path.ends_with(".json")) return inspect_safetensors(path, false);
    return make_error(ErrorCode::kBadInput, "'" + path +
                                                "' is neither a GGUF file (no GGUF magic), a .safetensors file nor a "
                                                "Hugging Face model folder");
}

} // namespace lowbit::pipeline
