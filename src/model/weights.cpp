// SPDX-License-Identifier: MIT
// Weight binding (see weights.h).
#include "model/weights.h"

#include "core/finite.h"
#include "core/half.h"
#include "scheme/scheme_list.h"

#include <fmt/format.h>

namespace lowbit::model {
namespace {

using R = TensorRole;

// Binds tensors of one store; carries the names and the source for messages.
class Binder {
  public:
    Binder(const format::TensorStore& store, const ArchDesc& arch, SourceFormat source)
        : store_(store), arch_(arch), source_(source) {}

    std::string name(R role, int64_t layer) const { return tensor_name(arch_, source_, role, layer); }
    bool has(R role, int64_t layer = 0) const {
        const std::string n = name(role, layer);
        return !n.empty() && store_.find(n) != nullptr;
    }

    Result<kernel::WeightView> matrix(R role, int64_t layer, int64_t n_rows, int64_t n_cols) const {
        LOWBIT_ASSIGN_OR_RETURN(TensorView v, view(role, layer, Shape{n_rows, n_cols}));
        if (!kernel::can_matmul(v.dtype))
            return make_error(ErrorCode::kUnsupported,
                              fmt::format("tensor '{}' has dtype {}, which lowbit cannot compute with yet (no "
                                          "scheme row with a dequantizer)",
                                          name(role, layer), dtype_name(v.dtype)));
        kernel::WeightView w = kernel::make_weight(v.data, v.dtype, n_rows, n_cols);
        if (v.dtype == DType::kI8) LOWBIT_TRY(bind_int8(name(role, layer), w));
        if (role != R::kTokenEmbd)
            LOWBIT_TRY(bind_col_perm(name(role, layer), w)); // rows are looked up, not multiplied
        return w;
    }

    Result<std::vector<float>> vector(R role, int64_t layer, int64_t n) const {
        LOWBIT_ASSIGN_OR_RETURN(TensorView v, view(role, layer, Shape{n}));
        const auto* sch = scheme::find_scheme(v.dtype);
        if (!sch || !sch->dequantize_row || dtype_is_quantized(v.dtype))
            return make_error(ErrorCode::kUnsupported,
                              fmt::format("tensor '{}' has dtype {}; 1-D tensors must be f32, f16 or bf16",
                                          name(role, layer), dtype_name(v.dtype)));
        std::vector<float> out(static_cast<size_t>(n));
        sch->dequantize_row(v.data, out.data(), n);
        return out;
    }

    Result<std::vector<float>> optional_vector(R role, int64_t layer, int64_t n) const {
        if (!has(role, layer)) return std::vector<float>{};
        return vector(role, layer, n);
    }

  private:
    // "<P>.<suffix>" for a weight named "<P>.weight", else "" (the records a weight binds with: SCB, the column order).
    static std::string sibling(const std::string& weight_name, const char* suffix) {
        const std::string tail = "weight";
        if (weight_name.size() <= tail.size() ||
            weight_name.compare(weight_name.size() - tail.size(), tail.size(), tail) != 0)
            return "";
        return weight_name.substr(0, weight_name.size() - tail.size()) + suffix;
    }

    // "<P>.lowbit_col_perm" of a weight "<P>.weight" when the store has one (see weights.h): checked to be a
    // permutation of the weight's columns.
    Status bind_col_perm(const std::string& weight_name, kernel::WeightView& w) const {
        const std::string pn = sibling(weight_name, kColPermSuffix);
        const format::TensorInfo* info = pn.empty() ? nullptr : store_.find(pn);
        if (!info) return ok_status();
        if (info->dtype != DType::kI32 || !(info->shape == Shape{w.n_cols}))
            return make_error(ErrorCode::kBadInput,
                              fmt::format("tensor '{}' is {} {}, expected I32 [{}]", pn, dtype_name(info->dtype),
                                          info->shape.to_string(), w.n_cols));
        LOWBIT_ASSIGN_OR_RETURN(TensorView p, store_.view(pn));
        const auto* perm = p.as<const int32_t>();
        if (reinterpret_cast<uintptr_t>(perm) % alignof(int32_t) != 0)
            return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}' is not 4-byte aligned", pn));
        std::vector<uint8_t> seen(static_cast<size_t>(w.n_cols), 0);
        for (int64_t j = 0; j < w.n_cols; ++j) {
            const int32_t c = perm[j];
            if (c < 0 || c >= w.n_cols || seen[size_t(c)]++)
                return make_error(ErrorCode::kBadInput,
                                  fmt::format("tensor '{}' is not a permutation of the {} columns of '{}' (entry {} "
                                              "is {})",
                                              pn, w.n_cols, weight_name, j, c));
        }
        w.col_perm = perm;
        return ok_status();
    }

    // LLM.int8: attaches "<P>.SCB" and the threshold (see weights.h) to an I8 weight "<P>.weight".
    Status bind_int8(const std::string& weight_name, kernel::WeightView& w) const {
        const std::string scb = sibling(weight_name, kInt8ScaleSuffix);
        const format::TensorInfo* info = scb.empty() ? nullptr : store_.find(scb);
        if (!info)
            return make_error(
                ErrorCode::kBadInput,
                fmt::format("tensor '{}' is int8 (LLM.int8) but its row scales '{}' are missing", weight_name, scb));
        if (info->dtype != DType::kF32 || !(info->shape == Shape{w.n_rows}))
            return make_error(ErrorCode::kBadInput,
                              fmt::format("tensor '{}' is {} {}, expected F32 [{}]", scb, dtype_name(info->dtype),
                                          info->shape.to_string(), w.n_rows));
        LOWBIT_ASSIGN_OR_RETURN(TensorView s, store_.view(scb));
        w.row_scale = s.as<const float>();
        w.outlier_threshold = kDefaultInt8Threshold;
        if (const format::TensorInfo* t = store_.find(kInt8ThresholdTensor)) {
            if (t->dtype != DType::kF32 || t->shape.n_elems() != 1)
                return make_error(ErrorCode::kBadInput,
                                  fmt::format("tensor '{}' must be one F32 value", kInt8ThresholdTensor));
            LOWBIT_ASSIGN_OR_RETURN(TensorView tv, store_.view(kInt8ThresholdTensor));
            w.outlier_threshold = load_f32(tv.data, 0); // any alignment (mmap'd data)
        }
        return ok_status();
    }

    Result<TensorView> view(R role, int64_t layer, const Shape& want) const {
        const std::string n = name(role, layer);
        const format::TensorInfo* info = n.empty() ? nullptr : store_.find(n);
        if (!info) {
            const std::string where = store_.paths().empty() ? "the model" : store_.paths().front();
            return make_error(ErrorCode::kBadInput,
                              fmt::format("tensor '{}' ({}{}) is missing from {} ({} {})", n, role_description(role),
                                          role >= R::kAttnNorm ? fmt::format(" of layer {}", layer) : "", where,
                                          source_format_name(source_), arch_.name));
        }
        if (!(info->shape == want))
            return make_error(ErrorCode::kBadInput,
                              fmt::format("tensor '{}' has shape {}, expected {} (from the model config)", n,
                                          info->shape.to_string(), want.to_string()));
        return store_.view(n);
    }

    const format::TensorStore& store_;
    const ArchDesc& arch_;
    SourceFormat source_;
};

Status require_positive(int64_t v, const char* field) {
    if (v > 0) return ok_status();
    return make_error(ErrorCode::kBadInput, fmt::format("model config: {} must be positive, got {}", field, v));
}

Result<LayerWeights> bind_layer(const Binder& b, const format::ModelConfig& c, const ArchDesc& arch, int64_t il) {
    const int64_t q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
    LayerWeights l;
    LOWBIT_ASSIGN_OR_RETURN(l.attn_norm, b.vector(R::kAttnNorm, il, c.hidden_size));
    LOWBIT_ASSIGN_OR_RETURN(l.wq, b.matrix(R::kAttnQ, il, q_dim, c.hidden_size));
    LOWBIT_ASSIGN_OR_RETURN(l.wk, b.matrix(R::kAttnK, il, kv_dim, c.hidden_size));
    LOWBIT_ASSIGN_OR_RETURN(l.wv, b.matrix(R::kAttnV, il, kv_dim, c.hidden_size));
    LOWBIT_ASSIGN_OR_RETURN(l.wo, b.matrix(R::kAttnOut, il, c.hidden_size, q_dim));
    if (arch.quirks.qkv_bias || c.attention_bias) {
        LOWBIT_ASSIGN_OR_RETURN(l.bq, b.vector(R::kAttnQBias, il, q_dim));
        LOWBIT_ASSIGN_OR_RETURN(l.bk, b.vector(R::kAttnKBias, il, kv_dim));
        LOWBIT_ASSIGN_OR_RETURN(l.bv, b.vector(R::kAttnVBias, il, kv_dim));
    } else {
        LOWBIT_ASSIGN_OR_RETURN(l.bq, b.optional_vector(R::kAttnQBias, il, q_dim));
        LOWBIT_ASSIGN_OR_RETURN(l.bk, b.optional_vector(R::kAttnKBias, il, kv_dim));
        LOWBIT_ASSIGN_OR_RETURN(l.bv, b.optional_vector(R::kAttnVBias, il, kv_dim));
    }
    LOWBIT_ASSIGN_OR_RETURN(l.bo, b.optional_vector(R::kAttnOutBias, il, c.hidden_size));
    LOWBIT_ASSIGN_OR_RETURN(l.ffn_norm, b.vector(R::kFfnNorm, il, c.hidden_size));
    LOWBIT_ASSIGN_OR_RETURN(l.w_gate, b.matrix(R::kFfnGate, il, c.intermediate_size, c.hidden_size));
    LOWBIT_ASSIGN_OR_RETURN(l.w_up, b.matrix(R::kFfnUp, il, c.intermediate_size, c.hidden_size));
    LOWBIT_ASSIGN_OR_RETURN(l.w_down, b.matrix(R::kFfnDown, il, c.hidden_size, c.intermediate_size));
    return l;
}

} // namespace

Result<format::ModelConfig> normalize_config(const format::ModelConfig& in) {
    format::ModelConfig c = in;
    LOWBIT_TRY(require_positive(c.vocab_size, "vocab_size"));
    LOWBIT_TRY(require_positive(c.hidden_size, "hidden_size"));
    LOWBIT_TRY(require_positive(c.intermediate_size, "intermediate_size"));
    LOWBIT_TRY(require_positive(c.n_layers, "num_hidden_layers"));
    LOWBIT_TRY(require_positive(c.n_heads, "num_attention_heads"));
    if (c.n_kv_heads <= 0) c.n_kv_heads = c.n_heads;
    if (c.head_dim <= 0) {
        if (c.hidden_size % c.n_heads != 0)
            return make_error(ErrorCode::kBadInput,
                              fmt::format("model config: hidden_size {} is not a multiple of num_attention_heads {}",
                                          c.hidden_size, c.n_heads));
        c.head_dim = c.hidden_size / c.n_heads;
    }
    if (c.n_heads % c.n_kv_heads != 0)
        return make_error(
            ErrorCode::kBadInput,
            fmt::format("model config: num_attention_heads {} is not a multiple of num_key_value_heads {}", c.n_heads,
                        c.n_kv_heads));
    if (c.head_dim % 2 != 0)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("model config: head_dim {} must be even for RoPE", c.head_dim));
    if (!(c.rms_norm_eps >= 0.0f) || !(c.rope_theta > 0.0f))
        return make_error(
            ErrorCode::kBadInput,
            fmt::format("model config: rms_norm_eps {} / rope_theta {} out of range", c.rms_norm_eps, c.rope_theta));
    LOWBIT_TRY(format::check_model_config(c, "model config", format::ConfigSource::kHfConfig));
    return c;
}

Result<ModelWeights> bind_weights(const format::TensorStore& store, const format::ModelConfig& c, const ArchDesc& arch,
                                  SourceFormat source) {
    const Binder b(store, arch, source);
    ModelWeights w;
    LOWBIT_ASSIGN_OR_RETURN(w.token_embd, b.matrix(R::kTokenEmbd, 0, c.vocab_size, c.hidden_size));
    if (w.token_embd.dtype == DType::kI8)
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("tensor '{}' is int8 (LLM.int8); embeddings must be float or a GGUF block type",
                                      b.name(R::kTokenEmbd, 0)));
    LOWBIT_ASSIGN_OR_RETURN(w.output_norm, b.vector(R::kOutputNorm, 0, c.hidden_size));
    w.tied = c.tie_word_embeddings || (source == SourceFormat::kGguf && !b.has(R::kOutput));
    if (w.tied) {
        w.output = w.token_embd;
    } else {
        LOWBIT_ASSIGN_OR_RETURN(w.output, b.matrix(R::kOutput, 0, c.vocab_size, c.hidden_size));
    }
    LOWBIT_ASSIGN_OR_RETURN(w.rope_freqs, b.optional_vector(R::kRopeFreqs, 0, c.head_dim / 2));
    // The layer count comes from the file: check it against the tensors present before sizing anything by it.
    if (c.n_layers < 1 || c.n_layers > format::kMaxLayers || !b.has(R::kAttnQ, c.n_layers - 1)) {
        const std::string where = store.paths().empty() ? "the model" : store.paths().front();
        return make_error(ErrorCode::kBadInput,
                          fmt::format("model config says {} layers, but {} has no tensor '{}' for layer {} (expected "
                                      "1 to {} layers, each with its tensors)",
                                      c.n_layers, where, c.n_layers >= 1 ? b.name(R::kAttnQ, c.n_layers - 1) : "",
                                      c.n_layers - 1, format::kMaxLayers));
    }
    w.layers.reserve(static_cast<size_t>(c.n_layers));
    for (int64_t il = 0; il < c.n_layers; ++il) {
        LOWBIT_ASSIGN_OR_RETURN(LayerWeights l, bind_layer(b, c, arch, il));
        w.layers.push_back(std::move(l));
    }
    return w;
}

namespace {

// "" or where the first non-finite value of a decoded matrix / vector is.
std::string non_finite_in(const kernel::WeightView& v) {
    if (!v.data) return {};
    if (v.row_scale) {
        const int64_t i = first_non_finite(v.row_scale, v.n_rows);
        if (i < v.n_rows) return fmt::format("row scale {} is {}", i, v.row_scale[i]);
    }
    const scheme::SchemeTraits* s = scheme::find_scheme(v.dtype);
    if (!s || !s->dequantize_row) return {};
    std::vector<float> row(static_cast<size_t>(v.n_cols));
    for (int64_t r = 0; r < v.n_rows; ++r) {
        s->dequantize_row(v.row(r), row.data(), v.n_cols);
        const int64_t c = first_non_finite(row.data(), v.n_cols);
        if (c < v.n_cols) return fmt::format("{} at row {}, column {}", row[size_t(c)], r, c);
    }
    return {};
}

std::string non_finite_in(const std::vector<float>& v) {
    const int64_t i = first_non_finite(v.data(), int64_t(v.size()));
    return i < int64_t(v.size()) ? fmt::format("{} at element {}", v[size_t(i)], i) : std::string();
}

} // namespace

std::string find_non_finite_weight(const ModelWeights& w, const ArchDesc& arch, SourceFormat source) {
    std::string found;
    auto check = [&](const auto& v, R role, int64_t layer) {
        if (!found.empty()) return;
        const std::string where = non_finite_in(v);
        if (!where.empty()) found = fmt::format("tensor '{}' holds {}", tensor_name(arch, source, role, layer), where);
    };
    check(w.token_embd, R::kTokenEmbd, 0);
    for (int64_t il = 0; il < int64_t(w.layers.size()); ++il) {
        const LayerWeights& l = w.layers[size_t(il)];
        check(l.attn_norm, R::kAttnNorm, il);
        check(l.wq, R::kAttnQ, il), check(l.wk, R::kAttnK, il), check(l.wv, R::kAttnV, il);
        check(l.bq, R::kAttnQBias, il), check(l.bk, R::kAttnKBias, il), check(l.bv, R::kAttnVBias, il);
        check(l.wo, R::kAttnOut, il), check(l.bo, R::kAttnOutBias, il);
        check(l.ffn_norm, R::kFfnNorm, il);
        check(l.w_gate, R::kFfnGate, il), check(l.w_up, R::kFfnUp, il), check(l.w_down, R::kFfnDown, il);
    }
    check(w.output_norm, R::kOutputNorm, 0);
    if (!w.tied) check(w.output, R::kOutput, 0);
    check(w.rope_freqs, R::kRopeFreqs, 0);
    return found;
}

} // namespace lowbit::model
