// SPDX-License-Identifier: MIT
// Host side of the GPU calibration drivers (contract in gpu_layer_host.h).
#include "pipeline/quantize/gpu_layer_host.h"

#include "core/finite.h"
#include "core/thread_pool.h"
#include "kernel/cuda/cuda_backend.h"
#include "model/rope_freqs.h"
#include "model/transformer.h"
#include "pipeline/calibrate/layer_view_store.h"
#include "scheme/scheme_list.h"

#include <algorithm>

namespace lowbit::pipeline {

using kernel::cuda::Slot;

Result<kernel::cuda::LayerDims> layer_dims(const format::ModelConfig& config) {
    if (config.n_layers < 1 || config.hidden_size < 1 || config.n_heads < 1 || config.intermediate_size < 1)
        return make_error(ErrorCode::kBadInput, "model config has no layers, heads or hidden/intermediate size");
    kernel::cuda::LayerDims dims;
    dims.hidden = config.hidden_size, dims.n_heads = config.n_heads;
    dims.n_kv_heads = config.n_kv_heads > 0 ? config.n_kv_heads : config.n_heads;
    dims.head_dim = config.head_dim > 0 ? config.head_dim : config.hidden_size / config.n_heads;
    dims.ff = config.intermediate_size, dims.rms_eps = config.rms_norm_eps;
    format::ModelConfig rope_config = config; // compute_inv_freq reads head_dim, which configs may leave implied
    rope_config.head_dim = dims.head_dim;
    LOWBIT_ASSIGN_OR_RETURN(dims.rope_inv_freq, model::compute_inv_freq(rope_config, {}));
    return dims;
}

SlotSizes slot_n_out(const kernel::cuda::LayerDims& d) {
    const int64_t q = d.n_heads * d.head_dim, kv = d.n_kv_heads * d.head_dim;
    return {q, kv, kv, d.hidden, d.ff, d.ff, d.hidden};
}

SlotSizes slot_n_in(const kernel::cuda::LayerDims& d) {
    const int64_t q = d.n_heads * d.head_dim;
    return {d.hidden, d.hidden, d.hidden, q, d.hidden, d.hidden, d.ff};
}

Result<std::vector<float>> load_f32_checked(const format::TensorStore& store, const std::string& name, int64_t rows,
                                            int64_t cols, const char* method) {
    LOWBIT_ASSIGN_OR_RETURN(TensorView v, store.view(name));
    const scheme::SchemeTraits* s = scheme::find_scheme(v.dtype);
    if (!s || !s->dequantize_row || dtype_block_elems(v.dtype) != 1)
        return make_error(ErrorCode::kUnsupported, std::string(method) + " needs f32/f16/bf16 weights; tensor '" +
                                                       name + "' is " + std::string(dtype_name(v.dtype)));
    const bool shape_ok = cols > 0 ? (v.shape.n_dims == 2 && v.shape[0] == rows && v.shape[1] == cols)
                                   : (v.shape.n_dims == 1 && v.shape[0] == rows);
    if (!shape_ok)
        return make_error(ErrorCode::kBadInput, "tensor '" + name + "' has shape " + v.shape.to_string() +
                                                    ", the config implies [" + std::to_string(rows) +
                                                    (cols > 0 ? ", " + std::to_string(cols) : "") + "]");
    const int64_t n = v.n_elems(), elem_bytes = dtype_block_bytes(v.dtype);
    std::vector<float> out(static_cast<size_t>(n));
    const auto* src = static_cast<const uint8_t*>(v.data);
    constexpr int64_t kChunk = 1 << 16;
    ThreadPool::global().parallel_for((n + kChunk - 1) / kChunk, [&](int64_t c0, int64_t c1, int) {
        for (int64_t c = c0; c < c1; ++c) {
            const int64_t b = c * kChunk, e = std::min(n, b + kChunk);
            s->dequantize_row(src + b * elem_bytes, out.data() + b, e - b);
        }
    });
    LOWBIT_TRY(check_finite_weights(out.data(), n, cols, name));
    return out;
}

Result<HostLayer> read_host_layer(const format::TensorStore& store, int64_t li, int64_t hidden, const SlotSizes& n_out,
                                  const SlotSizes& n_in, const char* method) {
    HostLayer h;
    const std::string prefix = hf_layer_prefix(li);
    for (int s = 0; s < kernel::cuda::kNumSlots; ++s) {
        const std::string module = prefix + model::linear_hf_name(static_cast<model::LinearId>(s));
        LOWBIT_ASSIGN_OR_RETURN(h.w[size_t(s)],
                                load_f32_checked(store, module + ".weight", n_out[size_t(s)], n_in[size_t(s)], method));
        if (store.find(module + ".bias")) {
            LOWBIT_ASSIGN_OR_RETURN(h.b[size_t(s)],
                                    load_f32_checked(store, module + ".bias", n_out[size_t(s)], 0, method));
        }
    }
    LOWBIT_ASSIGN_OR_RETURN(h.attn_norm, load_f32_checked(store, prefix + "input_layernorm.weight", hidden, 0, method));
    LOWBIT_ASSIGN_OR_RETURN(h.ffn_norm,
                            load_f32_checked(store, prefix + "post_attention_layernorm.weight", hidden, 0, method));
    return h;
}

Result<bool> resolve_calib_device(const std::string& device, const char* method, bool gpu_capable,
                                  const std::string& why_not) {
    if (device == "cpu") return false;
    if (device != "auto" && device != "cuda")
        return make_error(ErrorCode::kUsage, "--device must be auto, cpu or cuda, got '" + device + "'");
    const bool compiled = kernel::cuda::compiled_with_cuda();
    auto n = compiled ? kernel::cuda::device_count() : Result<int>(0);
    const bool present = n.ok() && *n > 0;
    if (device == "auto") return compiled && present && gpu_capable;
    if (!compiled)
        return make_error(ErrorCode::kUnsupported,
                          std::string("--device cuda: this lowbit was built without CUDA, so ") + method +
                              " cannot run on a GPU (configure with -DLOWBIT_CUDA=ON), or "
                              "use --device cpu");
    if (!present)
        return make_error(ErrorCode::kDevice, "--device cuda: no CUDA device answered (" +
                                                  (n.ok() ? std::string("0 devices") : n.error().message) +
                                                  "); use --device cpu");
    if (!gpu_capable) return make_error(ErrorCode::kUnsupported, "--device cuda: " + why_not + "; use --device cpu");
    return true;
}

Status check_calib_device(const std::string& device, const char* method) {
    auto d = resolve_calib_device(device, method);
    if (!d.ok()) return std::move(d).error();
    return {};
}

} // namespace lowbit::pipeline
