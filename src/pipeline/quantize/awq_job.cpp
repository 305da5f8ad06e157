// SPDX-License-Identifier: MIT
// AWQ streaming driver: per decoder layer, capture the linears' inputs, search AutoAWQ's four scalable groups on
// the float weights, fold the scales, clip, quantize, propagate. Contract in awq_job.h.
#include "pipeline/quantize/awq_job.h"

#include "core/finite.h"
#include "core/log.h"
#include "format/hf/hf_model.h"
#include "kernel/kernel.h"
#include "model/transformer.h"
#include "pipeline/calibrate/calib_source.h"
#include "pipeline/calibrate/layer_view_store.h"
#include "pipeline/quantize/awq_export.h"
#include "pipeline/quantize/awq_gpu_job.h"
#include "pipeline/quantize/gptq_job.h"
#include "pipeline/quantize/gpu_layer_host.h"
#include "runtime/session.h"
#include "scheme/scheme_list.h"

#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>

namespace lowbit::pipeline {
namespace {

using model::LinearId;
using Clock = std::chrono::steady_clock;
namespace qa = quantize::awq;

constexpr std::array<LinearId, 7> kLinears = {LinearId::kQ,    LinearId::kK,  LinearId::kV,   LinearId::kO,
                                              LinearId::kGate, LinearId::kUp, LinearId::kDown};
constexpr int64_t kChunkTokens = 2048; // token rows per GEMM when evaluating a block (bounds the scratch)

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string weight_name(int64_t layer, LinearId id) {
    return hf_layer_prefix(layer) + model::linear_hf_name(id) + ".weight";
}

// Any 1-D or 2-D float tensor as f32 values.
Result<std::vector<float>> load_f32(const format::TensorStore& store, const std::string& name, int n_dims) {
    LOWBIT_ASSIGN_OR_RETURN(TensorView v, store.view(name));
    const scheme::SchemeTraits* s = scheme::find_scheme(v.dtype);
    if (!s || !s->dequantize_row || v.shape.n_dims != n_dims)
        return make_error(ErrorCode::kUnsupported, "AWQ needs " + std::to_string(n_dims) +
                                                       "-D f32/f16/bf16 tensors; tensor '" + name + "' is " +
                                                       std::string(dtype_name(v.dtype)) + " " + v.shape.to_string());
    std::vector<float> out(size_t(v.n_elems()));
    s->dequantize_row(v.data, out.data(), v.n_elems());
    LOWBIT_TRY(check_finite_weights(out.data(), v.n_elems(), n_dims == 2 ? v.shape[1] : 0, name));
    return out;
}

struct Mat {
    std::vector<float> w; // [n_out, n_in]
    int64_t n_out = 0, n_in = 0;
    qa::LinearRef ref() const { return {w.data(), n_out}; }
    void scale_cols(const std::vector<float>& s) {
        for (int64_t r = 0; r < n_out; ++r)
            for (int64_t c = 0; c < n_in; ++c) w[size_t(r * n_in + c)] *= s[size_t(c)];
    }
    void divide_rows(const std::vector<float>& s) {
        for (int64_t r = 0; r < n_out; ++r)
            for (int64_t c = 0; c < n_in; ++c) w[size_t(r * n_in + c)] /= s[size_t(r)];
    }
};

// One layer's tensors as f32 copies; folding edits them in place.
struct LayerState {
    std::map<LinearId, Mat> lin;
    std::vector<float> attn_norm, ffn_norm; // [hidden]
    std::vector<float> v_bias, o_bias;      // [kv_dim], [hidden]; empty when absent
};

Result<LayerState> load_layer(const format::TensorStore& store, int64_t layer) {
    LayerState st;
    for (LinearId id : kLinears) {
        const std::string name = weight_name(layer, id);
        const format::TensorInfo* info = store.find(name);
        if (!info) return make_error(ErrorCode::kBadInput, "AWQ: the model has no tensor '" + name + "'");
        LOWBIT_ASSIGN_OR_RETURN(std::vector<float> w, load_f32(store, name, 2));
        st.lin[id] = Mat{std::move(w), info->shape[0], info->shape[1]};
    }
    const std::string p = hf_layer_prefix(layer);
    LOWBIT_ASSIGN_OR_RETURN(st.attn_norm, load_f32(store, p + "input_layernorm.weight", 1));
    LOWBIT_ASSIGN_OR_RETURN(st.ffn_norm, load_f32(store, p + "post_attention_layernorm.weight", 1));
    if (store.find(p + "self_attn.v_proj.bias")) {
        LOWBIT_ASSIGN_OR_RETURN(st.v_bias, load_f32(store, p + "self_attn.v_proj.bias", 1));
    }
    if (store.find(p + "self_attn.o_proj.bias")) {
        LOWBIT_ASSIGN_OR_RETURN(st.o_bias, load_f32(store, p + "self_attn.o_proj.bias", 1));
    }
    return st;
}

void divide_cols(std::vector<float>& x, int64_t n_cols, const std::vector<float>& s) {
    for (size_t i = 0; i < x.size(); ++i) x[i] /= s[i % size_t(n_cols)];
}

// y [n, n_out] = x [n, n_in] · w^T (+ bias).
void linear(const float* x, int64_t n, const float* w, int64_t n_out, int64_t n_in, const float* bias, float* y,
            ThreadPool* pool) {
    kernel::matmul(kernel::Exec{kernel::Backend::kCpu, pool}, x, n, kernel::make_weight(w, DType::kF32, n_out, n_in),
                   bias, y);
}

double sum_sq_diff(const float* a, const float* b, int64_t n) {
    return qa::mean_squared_error(a, b, n) * double(n);
}

// Loss of a single-linear block (o_proj, down_proj): mean (x·w'^T - ref)², in token chunks.
double linear_loss(const std::vector<float>& x, int64_t n_in, const std::vector<float>& w, int64_t n_out,
                   const float* bias, const std::vector<float>& ref, ThreadPool* pool) {
    const int64_t n_tokens = int64_t(x.size()) / n_in;
    std::vector<float> y(size_t(std::min(n_tokens, kChunkTokens) * n_out));
    double se = 0;
    for (int64_t t = 0; t < n_tokens; t += kChunkTokens) {
        const int64_t n = std::min(kChunkTokens, n_tokens - t);
        linear(x.data() + t * n_in, n, w.data(), n_out, n_in, bias, y.data(), pool);
        se += sum_sq_diff(y.data(), ref.data() + t * n_out, n * n_out);
    }
    return se / double(ref.size());
}

// Loss of the MLP block: mean (down(silu(x·gate'^T) * x·up'^T) - ref)², in token chunks.
double mlp_loss(const std::vector<float>& x, int64_t hsz, const std::vector<float>& gate, const std::vector<float>& up,
                const Mat& down, const std::vector<float>& ref, ThreadPool* pool) {
    const int64_t n_tokens = int64_t(x.size()) / hsz, ff = down.n_in, chunk = std::min(n_tokens, kChunkTokens);
    std::vector<float> g(size_t(chunk * ff)), u(g.size()), y(size_t(chunk * hsz));
    double se = 0;
    for (int64_t t = 0; t < n_tokens; t += kChunkTokens) {
        const int64_t n = std::min(kChunkTokens, n_tokens - t);
        linear(x.data() + t * hsz, n, gate.data(), ff, hsz, nullptr, g.data(), pool);
        linear(x.data() + t * hsz, n, up.data(), ff, hsz, nullptr, u.data(), pool);
        kernel::silu_mul(kernel::Exec{kernel::Backend::kCpu, pool}, g.data(), u.data(), g.data(), n * ff);
        linear(g.data(), n, down.w.data(), hsz, ff, nullptr, y.data(), pool);
        se += sum_sq_diff(y.data(), ref.data() + t * hsz, n * hsz);
    }
    return se / double(ref.size());
}

// Inputs of the layer's linears over all samples, [n_tokens, in_features] each.
struct Captured {
    std::vector<float> attn, o, mlp, down; // inputs of q/k/v, o, gate/up, down
};

struct LayerRun : LayerPass {
    using LayerPass::LayerPass;

    Status capture(std::vector<float>& hidden, int64_t n_samples, Captured& cap) {
        auto observer = [&](int64_t, LinearId id, const float* x, int64_t n, int64_t n_cols) {
            std::vector<float>* dst = id == LinearId::kQ      ? &cap.attn
                                      : id == LinearId::kO    ? &cap.o
                                      : id == LinearId::kGate ? &cap.mlp
                                      : id == LinearId::kDown ? &cap.down
                                                              : nullptr;
            if (dst) dst->insert(dst->end(), x, x + n * n_cols);
        };
        return pass(hidden, n_samples, false, observer);
    }

    // The attention sub-block on captured (normed) inputs, per sample: q/k/v (+ bias) -> RoPE -> causal GQA
    // attention -> o_proj (+ bias); the same kernels and order as Transformer::attention_block, without the MLP
    // that a run_layer pass would add. Valid when `attention_ok` (checked against the observed output).
    struct Attention {
        std::unique_ptr<model::Transformer> t; // the layer's transformer: RoPE table, biases, geometry
        bool ok = false;
    } attn;

    Result<double> attention_direct(const Captured& cap, const LayerState& st, std::span<const std::vector<float>> qkv,
                                    const std::vector<float>& ref) {
        const auto& c = attn.t->config();
        const model::LayerWeights& l = attn.t->weights().layers[0];
        const int64_t hsz = c.hidden_size, q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
        const Mat& o = st.lin.at(LinearId::kO);
        auto bias = [](const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); };
        std::vector<float> q(size_t(seqlen * q_dim)), k(size_t(seqlen * kv_dim)), v(k.size()), out(q.size());
        std::vector<float> y(size_t(seqlen * hsz));
        const kernel::Exec ex{kernel::Backend::kCpu, pool};
        double se = 0;
        for (int64_t s = 0; s < int64_t(ref.size()) / (seqlen * hsz); ++s) {
            const float* x = cap.attn.data() + s * seqlen * hsz;
            linear(x, seqlen, qkv[0].data(), q_dim, hsz, bias(l.bq), q.data(), pool);
            linear(x, seqlen, qkv[1].data(), kv_dim, hsz, bias(l.bk), k.data(), pool);
            linear(x, seqlen, qkv[2].data(), kv_dim, hsz, bias(l.bv), v.data(), pool);
            const float* inv_freq = attn.t->inv_freq().data();
            kernel::rope(ex, q.data(), seqlen, q_dim, c.n_heads, c.head_dim, 0, inv_freq, attn.t->rope_style());
            kernel::rope(ex, k.data(), seqlen, kv_dim, c.n_kv_heads, c.head_dim, 0, inv_freq, attn.t->rope_style());
            kernel::AttentionArgs a;
            a.q = q.data(), a.k = k.data(), a.v = v.data(), a.out = out.data();
            a.n_tokens = seqlen, a.n_past = 0, a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads;
            a.head_dim = c.head_dim, a.scale = static_cast<float>(1.0 / std::sqrt(double(c.head_dim)));
            kernel::attention(ex, a);
            linear(out.data(), seqlen, o.w.data(), o.n_out, o.n_in, bias(st.o_bias), y.data(), pool);
            se += sum_sq_diff(y.data(), ref.data() + s * seqlen * hsz, seqlen * hsz);
        }
        return se / double(ref.size());
    }

    // Builds `attn` for the current view and checks the direct path on the float weights: its loss must vanish
    // against the observed self_attn output (else, e.g. an architecture quirk it does not model, the layer path
    // is used).
    Status prepare_attention(const Captured& cap, const LayerState& st, const std::vector<float>& ref) {
        LOWBIT_ASSIGN_OR_RETURN(attn.t, model::Transformer::create(view, config1, model::SourceFormat::kHf));
        attn.ok = false;
        const std::vector<float> w[3] = {st.lin.at(LinearId::kQ).w, st.lin.at(LinearId::kK).w,
                                         st.lin.at(LinearId::kV).w};
        LOWBIT_ASSIGN_OR_RETURN(double loss, attention_direct(cap, st, w, ref));
        const double energy =
            qa::mean_squared_error(ref.data(), std::vector<float>(ref.size()).data(), int64_t(ref.size()));
        attn.ok = loss <= 1e-8 * energy;
        if (!attn.ok)
            log_warn("awq: the direct attention block differs from the layer's (relative MSE {:.3g}); using full "
                     "layer passes for the q/k/v scale search",
                     loss / energy);
        return {};
    }

    // self_attn output loss with q/k/v replaced: the layer runs with overrides; the o_proj input is read by the
    // observer and multiplied by the float o_proj (+ bias), then compared with `ref` [n_tokens, hidden].
    Result<double> attention_loss(std::vector<float>& hidden, int64_t n_samples, int64_t layer, const LayerState& st,
                                  std::span<const std::vector<float>> qkv, const std::vector<float>& ref) {
        const LinearId ids[3] = {LinearId::kQ, LinearId::kK, LinearId::kV};
        for (int i = 0; i < 3; ++i) LOWBIT_TRY(view->set_override(weight_name(layer, ids[i]), qkv[size_t(i)]));
        const Mat& o = st.lin.at(LinearId::kO);
        std::vector<float> xo(size_t(seqlen * o.n_in)), y(size_t(seqlen * o.n_out));
        double se = 0;
        auto observer = [&](int64_t, LinearId id, const float* x, int64_t n, int64_t n_cols) {
            if (id == LinearId::kO) std::memcpy(xo.data(), x, size_t(n * n_cols) * sizeof(float));
        };
        auto after = [&](int64_t s) {
            linear(xo.data(), seqlen, o.w.data(), o.n_out, o.n_in, st.o_bias.empty() ? nullptr : st.o_bias.data(),
                   y.data(), pool);
            se += sum_sq_diff(y.data(), ref.data() + s * seqlen * o.n_out, seqlen * o.n_out);
        };
        const Status status = pass(hidden, n_samples, false, observer, after);
        view->clear_overrides();
        LOWBIT_TRY(status);
        return se / double(ref.size());
    }
};

Status check_options(const AwqJobOptions& o, const format::ModelConfig& c) {
    if (c.n_layers < 1 || c.hidden_size < 1)
        return make_error(ErrorCode::kBadInput, "model config has no layers or hidden size");
    LOWBIT_TRY(qa::validate(awq_options(o), c.hidden_size));
    const int64_t q_dim = c.n_heads * (c.head_dim > 0 ? c.head_dim : c.hidden_size / std::max<int64_t>(c.n_heads, 1));
    for (int64_t n_in : {q_dim, c.intermediate_size})
        if (o.group_size > 0 && n_in % o.group_size != 0)
            return make_error(ErrorCode::kUsage, "awq group size " + std::to_string(o.group_size) +
                                                     " must divide every in_features; " + std::to_string(n_in) +
                                                     " is not a multiple");
    return {};
}

// w = s (q - z) of a quantized linear, f32 [n_out, n_in].
std::vector<float> dequantize_linear(const scheme::awq::AwqLinear& l) {
    const int64_t g = l.group_size < 0 ? l.n_in : l.group_size, n_groups = l.n_in / g;
    std::vector<float> w(size_t(l.n_out * l.n_in));
    for (int64_t r = 0; r < l.n_out; ++r)
        for (int64_t c = 0; c < l.n_in; ++c) {
            const size_t gi = size_t(r * n_groups + c / g), i = size_t(r * l.n_in + c);
            w[i] = l.scales[gi] * float(l.codes[i] - l.zeros[gi]);
        }
    return w;
}

// The source store with some tensors replaced by owned f32 values (same shapes).
class OverlayStore final : public format::TensorStore {
  public:
    OverlayStore(std::shared_ptr<const format::TensorStore> base, std::map<std::string, std::vector<float>> values)
        : base_(std::move(base)), values_(std::move(values)) {
        for (format::TensorInfo info : base_->tensors()) {
            if (values_.count(info.name)) info.dtype = DType::kF32, info.n_bytes = values_[info.name].size() * 4;
            index_[info.name] = infos_.size();
            infos_.push_back(std::move(info));
        }
    }
    const std::vector<format::TensorInfo>& tensors() const override { return infos_; }
    const format::TensorInfo* find(const std::string& name) const override {
        auto it = index_.find(name);
        return it == index_.end() ? nullptr : &infos_[it->second];
    }
    Result<TensorView> view(const std::string& name) const override {
        auto it = values_.find(name);
        if (it == values_.end()) return base_->view(name);
        return TensorView::contiguous(const_cast<float*>(it->second.data()), DType::kF32, find(name)->shape);
    }
    std::vector<std::string> paths() const override { return base_->paths(); }

  private:
    std::shared_ptr<const format::TensorStore> base_;
    std::map<std::string, std::vector<float>> values_;
    std::map<std::string, size_t> index_;
    std::vector<format::TensorInfo> infos_;
};

// One scalable group: the op whose output is divided by s and the linears whose columns are multiplied by s.
struct ScaledGroup {
    std::string prev_op;                 // HF module name ("model.layers.3.input_layernorm")
    std::optional<LinearId> prev_linear; // v_proj / up_proj; empty: a norm
    bool prev_attn_norm = false;         // which norm when prev_linear is empty
    std::vector<LinearId> linears;       // share one input
    std::vector<float> scales;           // [n_in]
};

std::vector<float>& input_of(Captured& cap, LinearId id) {
    switch (id) {
    case LinearId::kQ:
    case LinearId::kK:
    case LinearId::kV:
        return cap.attn;
    case LinearId::kO:
        return cap.o;
    case LinearId::kGate:
    case LinearId::kUp:
        return cap.mlp;
    default:
        return cap.down;
    }
}

// AutoAWQ's get_layers_for_scaling + _search_best_scale for each group, all on the float weights.
Result<std::vector<ScaledGroup>> search_layer(LayerRun& run, std::vector<float>& hidden, int64_t n_samples,
                                              int64_t layer, const LayerState& st, Captured& cap,
                                              const AwqJobOptions& o, AwqModelResult& result) {
    const qa::AwqOptions a = awq_options(o);
    const Mat &wo = st.lin.at(LinearId::kO), &wv = st.lin.at(LinearId::kV), &wd = st.lin.at(LinearId::kDown);
    const int64_t hsz = st.lin.at(LinearId::kQ).n_in, n_tokens = int64_t(cap.attn.size()) / hsz;
    const float* o_bias = st.o_bias.empty() ? nullptr : st.o_bias.data();
    // Float outputs of the inspected blocks: self_attn (= o_proj's output) and the MLP (= down_proj's output).
    std::vector<float> ref_attn(size_t(n_tokens * hsz)), ref_mlp(ref_attn.size());
    linear(cap.o.data(), n_tokens, wo.w.data(), wo.n_out, wo.n_in, o_bias, ref_attn.data(), run.pool);
    linear(cap.down.data(), n_tokens, wd.w.data(), wd.n_out, wd.n_in, nullptr, ref_mlp.data(), run.pool);
    LOWBIT_TRY(run.prepare_attention(cap, st, ref_attn));
    std::vector<ScaledGroup> groups;
    auto search = [&](ScaledGroup g, const qa::BlockLoss& loss) -> Status {
        std::vector<qa::LinearRef> refs;
        for (LinearId id : g.linears) refs.push_back(st.lin.at(id).ref());
        const int64_t n_in = st.lin.at(g.linears[0]).n_in;
        const std::vector<float>& x = input_of(cap, g.linears[0]);
        qa::ChannelMeanAbs mean(n_in);
        mean.add(x.data(), int64_t(x.size()) / n_in);
        LOWBIT_ASSIGN_OR_RETURN(qa::ScaleSearch best, qa::search_best_scale(refs, n_in, mean.mean(), loss, a));
        result.best_ratio[g.prev_op] = best.best_ratio;
        if (o.on_scales) o.on_scales(g.prev_op, best);
        g.scales = std::move(best.scales);
        groups.push_back(std::move(g));
        return {};
    };
    const std::string p = hf_layer_prefix(layer);
    LOWBIT_TRY(search({p + "input_layernorm", std::nullopt, true, {LinearId::kQ, LinearId::kK, LinearId::kV}, {}},
                      [&](std::span<const std::vector<float>> w) {
                          if (run.attn.ok && !o.attention_via_layer) return run.attention_direct(cap, st, w, ref_attn);
                          return run.attention_loss(hidden, n_samples, layer, st, w, ref_attn);
                      }));
    if (wv.n_out == wo.n_out && wv.n_in == wo.n_in) // AutoAWQ: only when v and o shapes match (no GQA)
        LOWBIT_TRY(search({p + "self_attn.v_proj", LinearId::kV, false, {LinearId::kO}, {}},
                          [&](std::span<const std::vector<float>> w) -> Result<double> {
                              return linear_loss(cap.o, wo.n_in, w[0], wo.n_out, o_bias, ref_attn, run.pool);
                          }));
    LOWBIT_TRY(search({p + "post_attention_layernorm", std::nullopt, false, {LinearId::kGate, LinearId::kUp}, {}},
                      [&](std::span<const std::vector<float>> w) -> Result<double> {
                          return mlp_loss(cap.mlp, hsz, w[0], w[1], wd, ref_mlp, run.pool);
                      }));
    LOWBIT_TRY(search({p + "mlp.up_proj", LinearId::kUp, false, {LinearId::kDown}, {}},
                      [&](std::span<const std::vector<float>> w) -> Result<double> {
                          return linear_loss(cap.down, wd.n_in, w[0], wd.n_out, nullptr, ref_mlp, run.pool);
                      }));
    return groups;
}

// apply_scale: prev op /= s (norm weight, or the previous linear's output rows and bias), the group's columns
// *= s, and the captured inputs of the group /= s (what the clip search sees).
void fold_scales(LayerState& st, Captured& cap, const std::vector<ScaledGroup>& groups) {
    for (const ScaledGroup& g : groups) {
        const std::vector<float>& s = g.scales;
        for (LinearId id : g.linears) st.lin.at(id).scale_cols(s);
        if (g.prev_linear) {
            st.lin.at(*g.prev_linear).divide_rows(s);
            if (*g.prev_linear == LinearId::kV && !st.v_bias.empty())
                for (size_t i = 0; i < s.size(); ++i) st.v_bias[i] /= s[i];
        } else {
            auto& norm = g.prev_attn_norm ? st.attn_norm : st.ffn_norm;
            for (size_t i = 0; i < s.size(); ++i) norm[i] /= s[i];
        }
        std::vector<float>& x = input_of(cap, g.linears[0]);
        divide_cols(x, int64_t(s.size()), s);
    }
}

// The folded tensors that are not quantized linears: HF name -> values.
std::map<std::string, std::vector<float>> folded_extras(const LayerState& st, int64_t layer,
                                                        const std::vector<ScaledGroup>& groups) {
    const std::string p = hf_layer_prefix(layer);
    std::map<std::string, std::vector<float>> out;
    out[p + "input_layernorm.weight"] = st.attn_norm;
    out[p + "post_attention_layernorm.weight"] = st.ffn_norm;
    for (const ScaledGroup& g : groups)
        if (g.prev_linear == LinearId::kV && !st.v_bias.empty()) out[p + "self_attn.v_proj.bias"] = st.v_bias;
    return out;
}

// _search_best_clip + apply_clip on every linear but q/k (AutoAWQ avoids clipping the attention scores' inputs).
Status clip_layer(LayerState& st, Captured& cap, const qa::AwqOptions& a) {
    for (LinearId id : {LinearId::kV, LinearId::kO, LinearId::kGate, LinearId::kUp, LinearId::kDown}) {
        Mat& m = st.lin.at(id);
        const std::vector<float>& x = input_of(cap, id);
        LOWBIT_ASSIGN_OR_RETURN(std::vector<float> max_val, qa::search_best_clip(m.w.data(), m.n_out, m.n_in, x.data(),
                                                                                 int64_t(x.size()) / m.n_in, a));
        qa::apply_clip(m.w.data(), m.n_out, m.n_in, a.group_size, max_val);
    }
    return {};
}

} // namespace

Status check_awq_options(const AwqJobOptions& o, const format::ModelConfig& c) {
    return check_options(o, c);
}

qa::AwqOptions awq_options(const AwqJobOptions& o) {
    qa::AwqOptions a;
    a.bits = o.bits, a.group_size = o.group_size, a.zero_point = o.zero_point, a.n_grid = o.n_grid;
    a.duo_scaling = o.duo_scaling, a.max_shrink = o.max_shrink, a.n_sample_token = o.n_sample_token;
    return a;
}

std::shared_ptr<format::TensorStore> make_dequantized_store(std::shared_ptr<const format::TensorStore> store,
                                                            const AwqModelResult& result) {
    std::map<std::string, std::vector<float>> values = result.replaced;
    for (const auto& [name, w] : result.folded) values[name] = w;
    for (const auto& [module, lin] : result.linears) values[module + ".weight"] = dequantize_linear(lin);
    return std::make_shared<OverlayStore>(std::move(store), std::move(values));
}

namespace {

// Steps 3-5 of a layer (fold, clip, quantize) and the view's overrides for the propagation pass.
Status finish_layer(LayerRun& run, int64_t layer, LayerState& st, Captured& cap, const std::vector<ScaledGroup>& groups,
                    const AwqJobOptions& o, AwqModelResult& result) {
    const qa::AwqOptions a = awq_options(o);
    fold_scales(st, cap, groups);
    for (auto& [name, values] : folded_extras(st, layer, groups)) {
        LOWBIT_TRY(run.view->set_override(name, values));
        result.replaced[name] = std::move(values);
    }
    if (o.fold_only) {
        for (auto& [id, m] : st.lin) {
            LOWBIT_TRY(run.view->set_override(weight_name(layer, id), m.w));
            result.folded[weight_name(layer, id)] = m.w;
        }
        return {};
    }
    const auto tc = Clock::now();
    if (o.clip) LOWBIT_TRY(clip_layer(st, cap, a));
    result.seconds_clip += seconds_since(tc);
    for (auto& [id, m] : st.lin) {
        qa::GroupQuant gq;
        qa::pseudo_quantize(m.w.data(), m.n_out, m.n_in, a, /*f16_scales=*/true, &gq); // m.w = s (q - z)
        scheme::awq::AwqLinear lin;
        lin.bits = o.bits, lin.n_out = m.n_out, lin.n_in = m.n_in, lin.group_size = o.group_size;
        lin.codes = std::move(gq.codes), lin.scales = std::move(gq.scales), lin.zeros = std::move(gq.zeros);
        result.linears[hf_layer_prefix(layer) + model::linear_hf_name(id)] = std::move(lin);
        if (o.propagate_quantized) LOWBIT_TRY(run.view->set_override(weight_name(layer, id), m.w));
    }
    if (!o.propagate_quantized) run.view->clear_overrides(); // the float layer's outputs, as AutoAWQ
    return {};
}

} // namespace

Result<AwqModelResult> awq_quantize_model(std::shared_ptr<const format::TensorStore> store,
                                          const format::ModelConfig& config, const CalibSamples& samples,
                                          const AwqJobOptions& o, ThreadPool* pool) {
    LOWBIT_TRY(check_options(o, config));
    const auto t0 = Clock::now();
    LOWBIT_ASSIGN_OR_RETURN(std::vector<float> hidden, embed_samples(store, config, samples, "AWQ")); // [N*L, hidden]
    const int64_t n_samples = int64_t(samples.size()), seqlen = int64_t(samples[0].size());
    const int64_t hsz = config.hidden_size, n_tokens = n_samples * seqlen;
    AwqModelResult result;
    LayerRun run(config, pool, seqlen);
    double t_search = 0;
    for (int64_t layer = 0; layer < config.n_layers; ++layer) {
        run.view = std::make_shared<LayerViewStore>(store, layer);
        LOWBIT_ASSIGN_OR_RETURN(LayerState st, load_layer(*store, layer));
        Captured cap;
        LOWBIT_TRY(run.capture(hidden, n_samples, cap));
        uint64_t weight_bytes = 0;
        for (const auto& [id, m] : st.lin) weight_bytes += m.w.size() * sizeof(float);
        result.peak_layer_bytes = std::max(result.peak_layer_bytes, weight_bytes);
        const uint64_t act = (hidden.size() + cap.attn.size() + cap.o.size() + cap.mlp.size() + cap.down.size() +
                              2 * size_t(n_tokens * hsz)) *
                             sizeof(float);
        result.activation_bytes = std::max(result.activation_bytes, act);
        const auto ts = Clock::now();
        LOWBIT_ASSIGN_OR_RETURN(auto groups, search_layer(run, hidden, n_samples, layer, st, cap, o, result));
        t_search += seconds_since(ts);
        LOWBIT_TRY(finish_layer(run, layer, st, cap, groups, o, result));
        LOWBIT_TRY(run.pass(hidden, n_samples, true, {})); // the next layer's inputs, in place
        run.view.reset();
        log_info("awq: layer {}/{} done (ratios {:.2f} {:.2f} {:.2f})", layer + 1, config.n_layers,
                 result.best_ratio[hf_layer_prefix(layer) + "input_layernorm"],
                 result.best_ratio[hf_layer_prefix(layer) + "post_attention_layernorm"],
                 result.best_ratio[hf_layer_prefix(layer) + "mlp.up_proj"]);
    }
    result.seconds_search = t_search;
    result.seconds_forward = seconds_since(t0) - t_search - result.seconds_clip;
    return result;
}

namespace {

// The GPTQ layout of AWQ's linears: same w = s (q - z), g_idx = k / g, zeros stored exactly (gptq_v2).
Status write_as_gptq(const QuantizeJobOptions& job, const AwqJobOptions& o,
                     std::shared_ptr<const format::TensorStore> store, AwqModelResult& r, QuantizeJobReport& report) {
    GptqModelResult g;
    for (auto& [module, lin] : r.linears) {
        const int64_t gs = lin.group_size < 0 ? lin.n_in : lin.group_size;
        scheme::gptq::GptqLinear q;
        q.bits = lin.bits, q.n_out = lin.n_out, q.n_in = lin.n_in, q.n_groups = lin.n_in / gs;
        q.codes.assign(lin.codes.begin(), lin.codes.end());
        lin.codes = {};
        q.scales = std::move(lin.scales), q.zeros = std::move(lin.zeros);
        q.g_idx.resize(size_t(lin.n_in));
        for (int64_t k = 0; k < lin.n_in; ++k) q.g_idx[size_t(k)] = int32_t(k / gs);
        LOWBIT_TRY(scheme::gptq::validate(q));
        g.linears[module] = std::move(q);
    }
    GptqJobOptions go;
    go.bits = o.bits, go.group_size = o.group_size, go.sym = !o.zero_point, go.gptq_v2 = true;
    go.true_sequential = false, go.propagate_quantized = o.propagate_quantized, go.calib = o.calib;
    OverlayStore overlay(std::move(store), r.replaced);
    return write_gptq_checkpoint(job.output, job.input, overlay, g, go, report);
}

} // namespace

Result<QuantizeJobReport> quantize_awq_to_hf(const QuantizeJobOptions& job, const AwqJobOptions& awq_in) {
    const auto t0 = Clock::now();
    AwqJobOptions o = awq_in;
    if (job.bits) o.bits = *job.bits;
    if (job.group_size) o.group_size = *job.group_size;
    if (job.symmetric) o.zero_point = !*job.symmetric;
    if (job.input.empty()) return make_error(ErrorCode::kUsage, "quantize needs an input model (-m)");
    if (job.output.empty()) return make_error(ErrorCode::kUsage, "quantize needs an output directory (-o)");
    AwqLayout layout = o.layout;
    if (layout == AwqLayout::kAuto) layout = o.bits == 4 ? AwqLayout::kAwqGemm : AwqLayout::kGptq;
    if (layout == AwqLayout::kAwqGemm && o.bits != 4)
        return make_error(ErrorCode::kUnsupported,
                          "the AWQ GEMM layout packs 4-bit weights only, got --bits " + std::to_string(o.bits));
    LOWBIT_ASSIGN_OR_RETURN(
        CalibratedSource src,
        open_calibrated_source(job.input, "awq", o.calib, job.n_threads, [&](const format::ModelConfig& c) -> Status {
            LOWBIT_TRY(check_options(o, c));
            return check_calib_device(job.device, "AWQ"); // --device errors before calibration work
        }));
    LOWBIT_ASSIGN_OR_RETURN(AwqModelResult r, awq_quantize_model_on(job.device, src.store, src.config, src.samples, o,
                                                                    &src.session->pool()));
    log_info("awq: activations {:.1f} MiB, layer weights {:.1f} MiB; forward {:.2f} s, scale search {:.2f} s, "
             "clip {:.2f} s",
             double(r.activation_bytes) / (1 << 20), double(r.peak_layer_bytes) / (1 << 20), r.seconds_forward,
             r.seconds_search, r.seconds_clip);
    QuantizeJobReport report;
    report.method = "awq";
    report.output = job.output;
    if (layout == AwqLayout::kGptq) {
        log_info("awq: {}-bit weights are written in the GPTQ layout (gptq_v2, exact zeros); AWQ GEMM packs 4-bit "
                 "only",
                 o.bits);
        LOWBIT_TRY(write_as_gptq(job, o, src.store, r, report));
    } else {
        AwqExportOptions eo;
        eo.bits = o.bits, eo.group_size = o.group_size, eo.zero_point = o.zero_point, eo.calib = o.calib;
        LOWBIT_TRY(write_awq_checkpoint(job.output, job.input, *src.store, r.linears, r.replaced, eo, report));
    }
    report.seconds = seconds_since(t0);
    return report;
}

} // namespace lowbit::pipeline
