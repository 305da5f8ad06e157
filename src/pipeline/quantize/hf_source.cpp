// SPDX-License-Identifier: MIT
// HF directory / GGUF file -> HF-named tensors decoded to f32 (see hf_source.h).
#include "pipeline/quantize/hf_source.h"

#include "core/file.h"
#include "core/thread_pool.h"
#include "format/gguf/gguf_file.h"
#include "format/gguf/gguf_model.h"
#include "format/hf/hf_model.h"
#include "format/hf/names.h"
#include "scheme/scheme_list.h"

#include <array>
#include <cstring>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace lowbit::pipeline::hfq {
namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Result<Source> open_hf(const std::string& dir) {
    LOWBIT_ASSIGN_OR_RETURN(hf::HfModel m, hf::open_hf_model(dir));
    Source s;
    s.config = m.config;
    s.dir = dir;
    LOWBIT_ASSIGN_OR_RETURN(s.config_json, read_file_to_string(dir + "/config.json"));
    for (const format::TensorInfo& t : m.store->tensors()) {
        if (t.name.find("rotary_emb.inv_freq") != std::string::npos) continue; // recomputed by every loader
        s.tensors.push_back({t.name, t.name, t.dtype, t.shape, 0});
    }
    s.store = std::shared_ptr<format::TensorStore>(std::move(m.store));
    return s;
}

Result<Source> open_gguf(const std::string& path) {
    LOWBIT_ASSIGN_OR_RETURN(std::shared_ptr<gguf::File> f, gguf::File::open(path));
    LOWBIT_ASSIGN_OR_RETURN(format::ModelConfig c, gguf::config_from_gguf(*f));
    Source s;
    s.config = c;
    s.is_gguf = true;
    for (const format::TensorInfo& t : f->tensors()) {
        const auto hf_name = hf::gguf_to_hf_name(t.name);
        if (!hf_name) {
            if (t.name == "rope_freqs.weight")
                return make_error(ErrorCode::kUnsupported,
                                  "'" + path +
                                      "' has rope_freqs.weight (Llama-3 rope scaling stored as a tensor); lowbit "
                                      "cannot write it back as config.json rope_scaling keys — quantize the HF "
                                      "directory instead");
            return make_error(ErrorCode::kUnsupported,
                              "GGUF tensor '" + t.name + "' in '" + path + "' has no Hugging Face name");
        }
        SourceTensor st{*hf_name, t.name, t.dtype, t.shape, 0};
        if (c.arch == "llama") {
            const char kind = hf::qk_kind(t.name);
            if (kind == 'q') st.permute_heads = c.n_heads;
            if (kind == 'k') st.permute_heads = c.n_kv_heads;
        }
        if (st.permute_heads > 0) {
            const int64_t rows = t.shape.n_dims == 1 ? t.shape.n_elems() : t.shape.n_rows();
            if (rows % (2 * st.permute_heads) != 0)
                return make_error(ErrorCode::kBadInput, "GGUF tensor '" + t.name + "' has " + std::to_string(rows) +
                                                            " rows, not a multiple of 2 x " +
                                                            std::to_string(st.permute_heads) +
                                                            " heads (cannot undo the Q/K permutation)");
        }
        s.tensors.push_back(std::move(st));
    }
    s.config_json = synthesize_config_json(c);
    s.store = std::move(f);
    return s;
}

} // namespace

// The double nearest the shortest decimal of `f` (1e-05, not 9.99999974738e-06).
static double shortest(float f) {
    return std::stod(fmt::format("{}", f));
}

Result<Source> open_source(const std::string& path) {
    if (is_directory(path)) return open_hf(path);
    if (!file_exists(path))
        return make_error(ErrorCode::kIo, // exit 1, as every command's open failure (README's exit codes)
                          "cannot open input '" + path +
                              "': no such file or directory (expected an HF directory or "
                              "a .gguf file)");
    return open_gguf(path);
}

bool is_decoder_linear(const SourceTensor& t) {
    static constexpr std::array<std::string_view, 7> kSuffixes = {
        ".self_attn.q_proj.weight", ".self_attn.k_proj.weight", ".self_attn.v_proj.weight", ".self_attn.o_proj.weight",
        ".mlp.gate_proj.weight",    ".mlp.up_proj.weight",      ".mlp.down_proj.weight"};
    if (t.shape.n_dims != 2 || t.name.rfind("model.layers.", 0) != 0) return false;
    for (std::string_view s : kSuffixes)
        if (ends_with(t.name, s)) return true;
    return false;
}

bool copies_verbatim(const SourceTensor& t) {
    const bool plain =
        t.dtype == DType::kF32 || t.dtype == DType::kF16 || t.dtype == DType::kBF16 || t.dtype == DType::kF64;
    return plain && t.permute_heads == 0;
}

Result<std::vector<float>> read_f32(const Source& src, const SourceTensor& t) {
    LOWBIT_ASSIGN_OR_RETURN(TensorView v, src.store->view(t.store_name));
    // A permuted 1-D tensor (q/k bias) permutes single elements: view it as [n, 1].
    const bool elementwise = t.shape.n_dims <= 1;
    const int64_t n_rows = elementwise ? t.shape.n_elems() : t.shape.n_elems() / t.shape.n_cols();
    const int64_t n_cols = elementwise ? 1 : t.shape.n_cols();
    const scheme::SchemeTraits* sch = t.dtype == DType::kF64 ? nullptr : scheme::find_scheme(t.dtype);
    if (t.dtype != DType::kF64 && (!sch || !sch->dequantize_row))
        return make_error(ErrorCode::kUnsupported, "tensor '" + t.store_name + "' has type " +
                                                       std::string(dtype_name(t.dtype)) +
                                                       " which this build cannot decode");
    if (elementwise && dtype_is_quantized(t.dtype))
        return make_error(ErrorCode::kUnsupported, "1-D tensor '" + t.store_name + "' is block-quantized");
    if (n_cols % dtype_block_elems(t.dtype) != 0)
        return make_error(ErrorCode::kBadInput, "tensor '" + t.store_name + "' has rows of " + std::to_string(n_cols) +
                                                    " elements, not whole " + std::string(dtype_name(t.dtype)) +
                                                    " blocks");
    const uint64_t row_bytes = *dtype_row_bytes(t.dtype, static_cast<uint64_t>(n_cols));
    std::vector<float> out(static_cast<size_t>(t.shape.n_elems()));
    const auto* base = static_cast<const uint8_t*>(v.data);
    ThreadPool::global().parallel_for(
        n_rows,
        [&](int64_t r0, int64_t r1, int) {
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t from = t.permute_heads > 0 ? hf::unpermute_src_row(r, n_rows, t.permute_heads) : r;
                const uint8_t* row = base + static_cast<uint64_t>(from) * row_bytes;
                float* dst = out.data() + r * n_cols;
                if (sch) {
                    sch->dequantize_row(row, dst, n_cols);
                } else {
                    for (int64_t i = 0; i < n_cols; ++i) {
                        double d;
                        std::memcpy(&d, row + 8 * i, 8);
                        dst[i] = static_cast<float>(d);
                    }
                }
            }
        },
        16);
    return out;
}

std::string synthesize_config_json(const format::ModelConfig& c) {
    nlohmann::ordered_json j;
    j["architectures"] = {c.hf_architecture};
    j["model_type"] = c.arch == "qwen2" ? "qwen2" : "llama";
    j["vocab_size"] = c.vocab_size;
    j["hidden_size"] = c.hidden_size;
    j["intermediate_size"] = c.intermediate_size;
    j["num_hidden_layers"] = c.n_layers;
    j["num_attention_heads"] = c.n_heads;
    j["num_key_value_heads"] = c.n_kv_heads;
    j["head_dim"] = c.head_dim;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["rms_norm_eps"] = shortest(c.rms_norm_eps);
    j["rope_theta"] = shortest(c.rope_theta);
    j["tie_word_embeddings"] = c.tie_word_embeddings;
    if (c.arch != "qwen2") j["attention_bias"] = c.attention_bias;
    j["hidden_act"] = "silu";
    j["torch_dtype"] = c.torch_dtype.empty() ? "bfloat16" : c.torch_dtype;
    if (c.bos_token_ids.size() == 1) j["bos_token_id"] = c.bos_token_ids[0];
    if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
    if (c.eos_token_ids.size() > 1) j["eos_token_id"] = c.eos_token_ids;
    return j.dump(2) + "\n";
}

} // namespace lowbit::pipeline::hfq
