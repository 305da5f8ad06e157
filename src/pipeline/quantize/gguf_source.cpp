// SPDX-License-Identifier: MIT
// HF folder and GGUF file inputs of `lowbit quantize` to GGUF (see gguf_source.h).
#include "pipeline/quantize/gguf_source.h"

#include "core/finite.h"
#include "format/gguf/gguf_file.h"
#include "format/hf/hf_model.h"
#include "kernel/cpu/quant/quant_rows.h"
#include "pipeline/convert/convert.h"
#include "scheme/scheme_list.h"

#include <fmt/format.h>

namespace lowbit::pipeline {
namespace {

namespace kq = quantize::kquant;

std::vector<int64_t> gguf_ne(const Shape& s) {
    std::vector<int64_t> ne;
    for (int i = s.n_dims - 1; i >= 0; --i) ne.push_back(s[i]);
    return ne;
}

class HfSource final : public GgufQuantSource {
  public:
    explicit HfSource(HfGgufSource s) : src_(std::move(s)) {
        const auto& c = src_.model.config;
        hparams_.arch = c.arch;
        hparams_.n_layer = static_cast<int>(c.n_layers);
        hparams_.n_head = static_cast<int>(c.n_heads);
        hparams_.n_head_kv = static_cast<int>(c.n_kv_heads);
        for (const HfGgufTensor& t : src_.tensors) tensors_.push_back({t.gguf_name, gguf_ne(t.shape), DType::kF32});
    }
    Status set_metadata(gguf::Writer& w) const override {
        return set_hf_gguf_metadata(w, src_.model, 0); // file type overwritten by the caller
    }
    Status read_f32(size_t i, std::vector<float>& out) const override {
        return read_hf_tensor_f32(src_, src_.tensors[i], out);
    }
    std::span<const uint8_t> raw_bytes(size_t) const override { return {}; }
    std::string requantize_warning(const std::string& method) const override {
        if (src_.quantization.empty()) return {};
        const bool float_target = method == "f32" || method == "f16" || method == "bf16";
        return pipeline::requantize_warning(src_, method, float_target);
    }

  private:
    HfGgufSource src_;
};

class GgufSource final : public GgufQuantSource {
  public:
    explicit GgufSource(std::shared_ptr<gguf::File> f) : f_(std::move(f)) {
        for (const format::TensorInfo& t : f_->tensors()) tensors_.push_back({t.name, gguf_ne(t.shape), t.dtype});
    }
    Status init_hparams() {
        LOWBIT_ASSIGN_OR_RETURN(hparams_.arch, f_->require_string("general.architecture"));
        const std::string a = hparams_.arch;
        LOWBIT_ASSIGN_OR_RETURN(const int64_t n_layer, f_->require_int(a + ".block_count"));
        LOWBIT_ASSIGN_OR_RETURN(const int64_t n_head, f_->require_int(a + ".attention.head_count"));
        LOWBIT_ASSIGN_OR_RETURN(const std::optional<int64_t> n_kv, f_->lookup_int(a + ".attention.head_count_kv"));
        LOWBIT_ASSIGN_OR_RETURN(const std::optional<int64_t> n_exp, f_->lookup_int(a + ".expert_count"));
        // Counts from the file, bounded before they become ints and index per-layer tables (issue #15).
        auto bounded = [&](const std::string& key, int64_t v, int64_t lo, int64_t hi) -> Status {
            if (v >= lo && v <= hi) return ok_status();
            return make_error(ErrorCode::kBadInput,
                              fmt::format("metadata key '{}' is {}, expected {} to {}", key, v, lo, hi));
        };
        LOWBIT_TRY(bounded(a + ".block_count", n_layer, 1, format::kMaxLayers));
        LOWBIT_TRY(bounded(a + ".attention.head_count", n_head, 1, format::kMaxHeads));
        LOWBIT_TRY(bounded(a + ".attention.head_count_kv", n_kv.value_or(n_head), 1, format::kMaxHeads));
        LOWBIT_TRY(bounded(a + ".expert_count", n_exp.value_or(0), 0, 1 << 16));
        hparams_.n_layer = static_cast<int>(n_layer);
        hparams_.n_head = static_cast<int>(n_head);
        hparams_.n_head_kv = static_cast<int>(n_kv.value_or(n_head));
        hparams_.n_expert = static_cast<int>(n_exp.value_or(0));
        return ok_status();
    }
    Status set_metadata(gguf::Writer& w) const override {
        for (const gguf::KeyValue& kv : f_->kvs()) {
            if (kv.key == "general.file_type" || kv.key == "general.quantization_version") continue;
            if (kv.key.rfind("quantize.imatrix.", 0) == 0) continue; // describes the old quantization
            LOWBIT_TRY(w.set(kv.key, kv.value));
        }
        return ok_status();
    }
    Status read_f32(size_t i, std::vector<float>& out) const override {
        const format::TensorInfo& t = f_->tensors()[i];
        const scheme::SchemeTraits* s = scheme::find_scheme(t.dtype);
        if (!s || !s->dequantize_row)
            return make_error(ErrorCode::kUnsupported,
                              fmt::format("{}: tensor '{}' is {}, which lowbit cannot decode to requantize it",
                                          f_->path(), t.name, dtype_name(t.dtype)));
        const int64_t n_cols = t.shape.n_cols(), n_rows = t.shape.n_rows();
        const uint64_t row_bytes = *dtype_row_bytes(t.dtype, static_cast<uint64_t>(n_cols));
        out.resize(static_cast<size_t>(t.shape.n_elems()));
        const uint8_t* base = f_->tensor_data(t);
        for (int64_t r = 0; r < n_rows; ++r)
            s->dequantize_row(base + static_cast<uint64_t>(r) * row_bytes, out.data() + r * n_cols, n_cols);
        return ok_status();
    }
    bool has_rows() const override { return true; }
    Result<int64_t> read_rows_f32(size_t i, int64_t r0, int64_t r1, float* out) const override {
        const format::TensorInfo& t = f_->tensors()[i];
        const int64_t n_cols = t.shape.n_cols();
        if (r0 < 0 || r1 < r0 || r1 > t.shape.n_rows())
            return make_error(ErrorCode::kInternal, fmt::format("rows [{}, {}) of tensor '{}'", r0, r1, t.name));
        const uint64_t row_bytes = *dtype_row_bytes(t.dtype, static_cast<uint64_t>(n_cols)); // checked at open
        const uint8_t* base = f_->tensor_data(t) + static_cast<uint64_t>(r0) * row_bytes;
        const int64_t n = (r1 - r0) * n_cols;
        if (t.dtype == DType::kF16) // the common input: decode and check in one pass
            return kernel::cpu::quant::decode_f16_row_checked(reinterpret_cast<const uint16_t*>(base), out, n,
                                                              kernel::cpu::qdot::active_level());
        const scheme::SchemeTraits* s = scheme::find_scheme(t.dtype);
        if (!s || !s->dequantize_row)
            return make_error(ErrorCode::kUnsupported,
                              fmt::format("{}: tensor '{}' is {}, which lowbit cannot decode to requantize it",
                                          f_->path(), t.name, dtype_name(t.dtype)));
        for (int64_t r = 0; r < r1 - r0; ++r)
            s->dequantize_row(base + static_cast<uint64_t>(r) * row_bytes, out + r * n_cols, n_cols);
        return first_non_finite(out, n);
    }
    void release_rows(size_t i, int64_t r0, int64_t r1) const override {
        const format::TensorInfo& t = f_->tensors()[i];
        const uint64_t row_bytes = *dtype_row_bytes(t.dtype, static_cast<uint64_t>(t.shape.n_cols()));
        f_->release_bytes(t, static_cast<uint64_t>(r0) * row_bytes, static_cast<uint64_t>(r1 - r0) * row_bytes);
    }
    std::span<const uint8_t> raw_bytes(size_t i) const override {
        const format::TensorInfo& t = f_->tensors()[i];
        return {f_->tensor_data(t), static_cast<size_t>(t.n_bytes)};
    }
    std::string requantize_warning(const std::string&) const override { return {}; }

  private:
    std::shared_ptr<gguf::File> f_;
};

} // namespace

Result<int64_t> GgufQuantSource::read_rows_f32(size_t i, int64_t, int64_t, float*) const {
    return make_error(ErrorCode::kInternal,
                      fmt::format("tensor '{}': this source is not read by rows", tensors_[i].name));
}

Result<std::unique_ptr<GgufQuantSource>> open_gguf_quant_source(const std::string& path) {
    if (hf::is_hf_model_dir(path)) {
        LOWBIT_ASSIGN_OR_RETURN(HfGgufSource s, open_hf_gguf_source(path));
        return std::unique_ptr<GgufQuantSource>(std::make_unique<HfSource>(std::move(s)));
    }
    LOWBIT_ASSIGN_OR_RETURN(std::shared_ptr<gguf::File> f, gguf::File::open(path));
    auto src = std::make_unique<GgufSource>(std::move(f));
    if (Status st = src->init_hparams(); !st.ok())
        return make_error(ErrorCode::kBadInput,
                          path +
                              ": cannot read the hyper-parameters the quantization mix needs: " + st.error().message);
    return std::unique_ptr<GgufQuantSource>(std::move(src));
}

} // namespace lowbit::pipeline
