// SPDX-License-Identifier: MIT
// HF folder -> GGUF: the plan (names, shapes, output types), the metadata keys and the streaming producers.
#include "pipeline/convert/convert.h"

#include "core/checked.h"
#include "core/file.h"
#include "core/half.h"
#include "core/log.h"
#include "core/progress.h"
#include "format/gguf/gguf_writer.h"
#include "format/hf/hf_model.h"
#include "format/hf/names.h"
#include "format/hf/tokenizer_json.h"
#include "model/quantized/quant_loader.h"
#include "pipeline/convert/gguf_metadata.h"
#include "scheme/scheme_list.h"

#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <memory>
#include <vector>

namespace lowbit::pipeline {
namespace {

using format::ModelConfig;
using format::TensorInfo;

// One output tensor: the shared plan entry plus convert's output type.
struct PlannedTensor : HfGgufTensor {
    DType out_type = DType::kF32;
};

// Shapes config.json implies for each GGUF name (per-layer names without the "blk.N." prefix).
std::map<std::string, Shape> expected_shapes(const ModelConfig& c) {
    const int64_t h = c.hidden_size, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
    return {
        {"token_embd.weight", {c.vocab_size, h}},
        {"output_norm.weight", {h}},
        {"output.weight", {c.vocab_size, h}},
        {"attn_norm.weight", {h}},
        {"attn_q.weight", {q, h}},
        {"attn_k.weight", {kv, h}},
        {"attn_v.weight", {kv, h}},
        {"attn_output.weight", {h, q}},
        {"attn_q.bias", {q}},
        {"attn_k.bias", {kv}},
        {"attn_v.bias", {kv}},
        {"attn_output.bias", {h}},
        {"ffn_norm.weight", {h}},
        {"ffn_gate.weight", {c.intermediate_size, h}},
        {"ffn_up.weight", {c.intermediate_size, h}},
        {"ffn_down.weight", {h, c.intermediate_size}},
    };
}

// The Llama-3 rope frequency factors, as llama.cpp's LlamaModel.generate_extra_tensors computes them.
std::vector<float> llama3_rope_factors(const ModelConfig& c) {
    const auto& rs = c.rope_scaling;
    const int64_t dim = c.head_dim;
    const double old_ctx = static_cast<double>(rs.original_max_position_embeddings);
    const double low_wavelen = old_ctx / rs.low_freq_factor, high_wavelen = old_ctx / rs.high_freq_factor;
    std::vector<float> out;
    for (int64_t i = 0; i < dim; i += 2) {
        // torch: 1.0 / (base ** (arange(0, dim, 2, float32) / dim)) in float32
        const float expo = static_cast<float>(i) / static_cast<float>(dim);
        const float freq = 1.0f / std::pow(c.rope_theta, expo);
        const double wavelen = 2 * M_PI / static_cast<double>(freq);
        if (wavelen < high_wavelen) {
            out.push_back(1.0f);
        } else if (wavelen > low_wavelen) {
            out.push_back(rs.factor);
        } else {
            const double smooth = (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
            out.push_back(static_cast<float>(1.0 / ((1 - smooth) / rs.factor + smooth)));
        }
    }
    return out;
}

Result<std::vector<HfGgufTensor>> plan_tensors(const ModelConfig& c, const format::TensorStore& store) {
    const auto shapes = expected_shapes(c);
    std::map<std::string, const TensorInfo*> by_gguf;
    for (const TensorInfo& t : store.tensors()) {
        if (t.name.find("rotary_emb.inv_freq") != std::string::npos) continue; // recomputed at run time
        auto g = hf::hf_to_gguf_name(t.name);
        if (!g)
            return make_error(ErrorCode::kUnsupported, "tensor '" + t.name + "' has no GGUF name (not a " +
                                                           c.hf_architecture + " weight lowbit knows)");
        if (c.tie_word_embeddings && *g == "output.weight") continue;
        by_gguf[*g] = &t;
    }
    std::vector<std::string> order = {"token_embd.weight"};
    const char* per_layer[] = {"attn_norm.weight", "attn_q.weight",   "attn_q.bias",     "attn_k.weight",
                               "attn_k.bias",      "attn_v.weight",   "attn_v.bias",     "attn_output.weight",
                               "attn_output.bias", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
                               "ffn_down.weight"};
    for (int64_t l = 0; l < c.n_layers; ++l)
        for (const char* s : per_layer) order.push_back("blk." + std::to_string(l) + "." + s);
    order.push_back("output_norm.weight");
    order.push_back("output.weight");

    std::vector<HfGgufTensor> plan;
    if (c.rope_scaling.type == "llama3") {
        HfGgufTensor p;
        p.gguf_name = "rope_freqs.weight";
        p.generated = llama3_rope_factors(c);
        p.shape = Shape{static_cast<int64_t>(p.generated.size())};
        plan.push_back(std::move(p));
    }
    for (const std::string& name : order) {
        auto it = by_gguf.find(name);
        const bool optional_bias = name.find(".bias") != std::string::npos &&
                                   (name.find("attn_output") != std::string::npos || !c.attention_bias);
        if (it == by_gguf.end()) {
            if (optional_bias) continue;
            if (name == "output.weight") {
                if (!c.tie_word_embeddings)
                    log_warn("convert: no lm_head.weight although tie_word_embeddings is false; the model will use "
                             "token_embd.weight as output");
                continue;
            }
            const auto hf_name = hf::gguf_to_hf_name(name);
            return make_error(ErrorCode::kBadInput, "tensor '" + hf_name.value_or(name) + "' is missing (" +
                                                        c.hf_architecture + " with " + std::to_string(c.n_layers) +
                                                        " layers needs it)");
        }
        const TensorInfo& t = *it->second;
        const std::string key = name.rfind("blk.", 0) == 0 ? name.substr(name.find('.', 4) + 1) : name;
        const Shape want = shapes.at(key);
        if (!(t.shape == want))
            return make_error(ErrorCode::kBadInput, "tensor '" + t.name + "' has shape " + t.shape.to_string() +
                                                        " but config.json implies " + want.to_string());
        if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16 && t.dtype != DType::kF64)
            return make_error(ErrorCode::kUnsupported, "tensor '" + t.name + "' has dtype " +
                                                           std::string(dtype_name(t.dtype)) +
                                                           " (convert reads f64/f32/f16/bf16 weights)");
        HfGgufTensor p;
        p.gguf_name = name;
        p.src = &t;
        p.shape = t.shape;
        p.keep_f32 = t.shape.n_dims <= 1 || key.ends_with("_norm.weight");
        if (c.arch == "llama") {
            const char kind = hf::qk_kind(name);
            if (kind == 'q') p.permute_heads = c.n_heads;
            if (kind == 'k') p.permute_heads = c.n_kv_heads;
        }
        plan.push_back(std::move(p));
    }
    return plan;
}

std::vector<PlannedTensor> make_plan(std::vector<HfGgufTensor> tensors, DType out_type, int64_t& n_fallback) {
    std::vector<PlannedTensor> plan;
    for (HfGgufTensor& t : tensors) {
        PlannedTensor p;
        static_cast<HfGgufTensor&>(p) = std::move(t);
        p.out_type = p.keep_f32 || !p.src ? DType::kF32 : out_type;
        if (dtype_is_quantized(p.out_type) && p.shape.n_cols() % dtype_block_elems(p.out_type) != 0) {
            log_warn("convert: '{}' has {} columns, not a multiple of {}; writing it as f16", p.gguf_name,
                     p.shape.n_cols(), dtype_block_elems(p.out_type));
            p.out_type = DType::kF16;
            ++n_fallback;
        }
        plan.push_back(std::move(p));
    }
    return plan;
}

void decode_row(const uint8_t* src, DType t, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        switch (t) {
        case DType::kF32: {
            std::memcpy(&dst[i], src + 4 * i, 4);
            break;
        }
        case DType::kF64: {
            double d;
            std::memcpy(&d, src + 8 * i, 8);
            dst[i] = static_cast<float>(d);
            break;
        }
        default: {
            uint16_t h;
            std::memcpy(&h, src + 2 * i, 2);
            dst[i] = t == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
        }
    }
}

void encode_row(const float* src, DType t, uint8_t* dst, int64_t n) {
    if (t == DType::kF32) {
        std::memcpy(dst, src, static_cast<size_t>(n) * 4);
    } else if (t == DType::kF16 || t == DType::kBF16) {
        for (int64_t i = 0; i < n; ++i) {
            const uint16_t h = t == DType::kF16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
            std::memcpy(dst + 2 * i, &h, 2);
        }
    } else {
        scheme::find_scheme(t)->quantize_row(src, dst, n, nullptr);
    }
}

// Streams one planned tensor: rows decoded to f32, permuted, encoded, flushed in ~1 MiB chunks.
gguf::TensorProducer make_producer(const PlannedTensor& p, const format::TensorStore& store, ProgressBar* bar) {
    return [&p, &store, bar](const gguf::ByteSink& sink) -> Status {
        if (bar) bar->set_suffix(p.gguf_name);
        if (!p.src) {
            LOWBIT_TRY(sink(p.generated.data(), p.generated.size() * sizeof(float)));
            if (bar) bar->tick();
            return ok_status();
        }
        LOWBIT_ASSIGN_OR_RETURN(TensorView v, store.view(p.src->name));
        // A permuted 1-D tensor (q/k bias) permutes single elements: view it as [n, 1].
        const bool elementwise = p.permute_heads > 0 && p.shape.n_dims == 1;
        const int64_t n_rows = elementwise ? p.shape.n_elems() : p.shape.n_rows();
        const int64_t n_cols = elementwise ? 1 : p.shape.n_cols();
        const uint64_t src_row_bytes =
            static_cast<uint64_t>(n_cols) * static_cast<uint64_t>(dtype_block_bytes(p.src->dtype));
        const uint64_t dst_row_bytes = *dtype_row_bytes(p.out_type, static_cast<uint64_t>(n_cols));
        const int64_t rows_per_chunk =
            std::max<int64_t>(1, static_cast<int64_t>((1u << 20) / std::max<uint64_t>(dst_row_bytes, 1)));
        std::vector<float> row(static_cast<size_t>(n_cols));
        std::vector<uint8_t> chunk;
        const auto* base = static_cast<const uint8_t*>(v.data);
        for (int64_t r0 = 0; r0 < n_rows; r0 += rows_per_chunk) {
            const int64_t r1 = std::min(n_rows, r0 + rows_per_chunk);
            chunk.resize(static_cast<size_t>(r1 - r0) * dst_row_bytes);
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t from = p.permute_heads > 0 ? hf::permute_src_row(r, n_rows, p.permute_heads) : r;
                decode_row(base + static_cast<uint64_t>(from) * src_row_bytes, p.src->dtype, row.data(), n_cols);
                encode_row(row.data(), p.out_type, chunk.data() + static_cast<uint64_t>(r - r0) * dst_row_bytes,
                           n_cols);
            }
            LOWBIT_TRY(sink(chunk.data(), chunk.size()));
        }
        if (bar) bar->tick();
        return ok_status();
    };
}

} // namespace

int file_type_for(DType out_type) {
    switch (out_type) {
    case DType::kF32:
        return 0;
    case DType::kF16:
        return 1;
    case DType::kQ8_0:
        return 7;
    case DType::kBF16:
        return 32;
    default:
        return -1;
    }
}

Result<HfGgufSource> open_hf_gguf_source(const std::string& dir) {
    HfGgufSource s;
    LOWBIT_ASSIGN_OR_RETURN(s.model, hf::open_hf_model(dir));
    const ModelConfig& c = s.model.config;
    if (c.head_dim % 2 != 0 || (c.n_heads * c.head_dim) % (2 * c.n_heads) != 0)
        return make_error(ErrorCode::kBadInput, "head_dim must be even for the Q/K permutation");
    LOWBIT_ASSIGN_OR_RETURN(std::string config_json, read_file_to_string(dir + "/config.json"));
    LOWBIT_ASSIGN_OR_RETURN(s.quantization, model::quantized::describe_quantization(config_json));
    std::shared_ptr<const format::TensorStore> files = std::move(s.model.store);
    LOWBIT_ASSIGN_OR_RETURN(
        s.store, model::quantized::wrap_quantized(std::move(files), config_json, c, /*dequantize_all=*/true));
    LOWBIT_ASSIGN_OR_RETURN(s.tensors, plan_tensors(c, *s.store));
    return s;
}

std::string requantize_warning(const HfGgufSource& s, const std::string& target, bool float_target) {
    const std::string head = fmt::format("'{}' is already quantized ({}); ", s.model.dir, s.quantization);
    if (!float_target)
        return head + fmt::format("requantizing compounds the error: the {} output carries the {} error plus its "
                                  "own (quantize the original unquantized model instead when you have it)",
                                  target, s.quantization);
    const std::string exactness = target == "f32" ? "exact"
                                                  : fmt::format("exact up to {} rounding ({} significant bits)", target,
                                                                target == "f16" ? 11 : 8);
    return head + fmt::format("the {} output is its dequantized weights, {}; the error of the {} quantization "
                              "stays (the original weights cannot be recovered)",
                              target, exactness, s.quantization);
}

Status set_hf_gguf_metadata(gguf::Writer& w, const hf::HfModel& m, int file_type) {
    const ModelConfig& c = m.config;
    LOWBIT_TRY(set_model_metadata(w, c, m.dir, file_type));
    if (file_exists(m.dir + "/tokenizer.json")) {
        LOWBIT_ASSIGN_OR_RETURN(format::VocabData vocab, hf::parse_hf_tokenizer(m.dir, c.vocab_size));
        if (static_cast<int64_t>(vocab.tokens.size()) != c.vocab_size)
            return make_error(ErrorCode::kBadInput, "tokenizer.json has " + std::to_string(vocab.tokens.size()) +
                                                        " tokens but config.json says vocab_size " +
                                                        std::to_string(c.vocab_size));
        if (vocab.bos_id < 0 && !c.bos_token_ids.empty()) vocab.bos_id = c.bos_token_ids[0];
        if (vocab.eos_id < 0 && !c.eos_token_ids.empty()) vocab.eos_id = c.eos_token_ids[0];
        LOWBIT_TRY(set_tokenizer_metadata(w, vocab));
    } else {
        log_warn("'{}' has no tokenizer.json; the GGUF will have no tokenizer", m.dir);
    }
    return ok_status();
}

Status read_hf_tensor_f32(const HfGgufSource& s, const HfGgufTensor& t, std::vector<float>& out) {
    out.resize(static_cast<size_t>(t.shape.n_elems()));
    if (!t.src) {
        std::copy(t.generated.begin(), t.generated.end(), out.begin());
        return ok_status();
    }
    LOWBIT_ASSIGN_OR_RETURN(TensorView v, s.store->view(t.src->name));
    const bool elementwise = t.permute_heads > 0 && t.shape.n_dims == 1;
    const int64_t n_rows = elementwise ? t.shape.n_elems() : t.shape.n_rows();
    const int64_t n_cols = elementwise ? 1 : t.shape.n_cols();
    const uint64_t src_row_bytes =
        static_cast<uint64_t>(n_cols) * static_cast<uint64_t>(dtype_block_bytes(t.src->dtype));
    const auto* base = static_cast<const uint8_t*>(v.data);
    for (int64_t r = 0; r < n_rows; ++r) {
        const int64_t from = t.permute_heads > 0 ? hf::permute_src_row(r, n_rows, t.permute_heads) : r;
        decode_row(base + static_cast<uint64_t>(from) * src_row_bytes, t.src->dtype, out.data() + r * n_cols, n_cols);
    }
    return ok_status();
}

Result<ConvertReport> convert_hf_to_gguf(const ConvertOptions& o) {
    const int file_type = file_type_for(o.out_type);
    if (file_type < 0)
        return make_error(ErrorCode::kUnsupported, "convert --type " + std::string(dtype_name(o.out_type)) +
                                                       " is not supported (supported: f32, f16, bf16, q8_0; use "
                                                       "'lowbit quantize' for other types)");
    if (dtype_is_quantized(o.out_type)) {
        const scheme::SchemeTraits* s = scheme::find_scheme(o.out_type);
        if (!s || !s->quantize_row)
            return make_error(ErrorCode::kUnsupported,
                              "this build cannot quantize to " + std::string(dtype_name(o.out_type)));
    }
    LOWBIT_ASSIGN_OR_RETURN(HfGgufSource src, open_hf_gguf_source(o.input_dir));
    if (!src.quantization.empty())
        log_warn("{}", requantize_warning(src, std::string(dtype_name(o.out_type)), !dtype_is_quantized(o.out_type)));
    ConvertReport report;
    std::vector<PlannedTensor> plan = make_plan(std::move(src.tensors), o.out_type, report.n_fallback_f16);

    gguf::Writer w;
    LOWBIT_TRY(set_hf_gguf_metadata(w, src.model, file_type));
    ProgressBar bar("convert", static_cast<int64_t>(plan.size()), o.progress && ProgressBar::stderr_is_terminal());
    for (const PlannedTensor& p : plan) {
        LOWBIT_TRY(w.add_tensor_producer(p.gguf_name, p.out_type, p.shape, make_producer(p, *src.store, &bar)));
        ++report.n_tensors;
        if (p.src) report.n_params += p.shape.n_elems();
    }
    for (size_t i = 0; i < w.n_tensors(); ++i) report.n_bytes += w.tensor_bytes(i);
    LOWBIT_TRY(w.write(o.output_path));
    bar.finish();
    return report;
}

} // namespace lowbit::pipeline
