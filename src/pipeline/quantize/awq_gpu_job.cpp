// SPDX-License-Identifier: MIT
// AWQ streaming driver on CUDA (contract in awq_gpu_job.h): CalibLayer holds the hidden states and runs the layer,
// AwqCuda quantizes candidates and reduces block losses on the device; the host computes the 20 scale vectors per
// group (n_in floats each) and keeps the float weights of the current layer to restore the runner after a search.
#include "pipeline/quantize/awq_gpu_job.h"

#include "core/log.h"
#include "kernel/cuda/calib_layer.h"
#include "kernel/cuda/cuda_backend.h"
#include "model/transformer.h"
#include "pipeline/calibrate/calib_source.h"
#include "pipeline/calibrate/layer_view_store.h"
#include "pipeline/quantize/gptq_gpu_job.h"
#include "pipeline/quantize/gpu_layer_host.h"
#include "quantize/awq/awq.h"
#include "quantize/awq/awq_cuda.h"
#include "quantize/gptq/gptq_cuda.h"

#include <chrono>
#include <future>
#include <limits>
#include <optional>

namespace lowbit::pipeline {
namespace {

using kernel::cuda::CalibLayer;
using kernel::cuda::Slot;
using Clock = std::chrono::steady_clock;
namespace qa = quantize::awq;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

uint64_t gpu_used_now() {
    auto used = quantize::gptq::cuda_used_bytes();
    return used.ok() ? *used : 0;
}

struct DevBuf {
    std::shared_ptr<float> p;
    int64_t n = 0;
    float* get() const { return p.get(); }
};

Result<DevBuf> device_buffer(int64_t n) {
    LOWBIT_ASSIGN_OR_RETURN(std::shared_ptr<float> p, kernel::cuda::device_floats(std::max<int64_t>(n, 1)));
    return DevBuf{std::move(p), n};
}

// One scalable group (AutoAWQ get_layers_for_scaling): prev op (a norm, or a linear's output rows) and the linears
// that share its output as input.
struct ScaledGroup {
    std::string prev_op;
    std::optional<Slot> prev_linear; // kV / kUp; empty: a norm
    bool prev_attn_norm = false;
    std::vector<Slot> linears;
    std::vector<float> scales;
};

struct AwqGpuRun {
    const AwqJobOptions* o = nullptr;
    qa::AwqOptions a;
    std::unique_ptr<CalibLayer> layer;
    std::unique_ptr<qa::AwqCuda> ops;
    SlotSizes n_out{}, n_in{};
    int64_t n_tokens = 0, hidden = 0, chunk = 8192;
    HostLayer host;                                     // the layer's float tensors (restore + folded norms)
    std::array<DevBuf, kernel::cuda::kNumSlots> f;      // float -> folded -> clipped -> quantized weights
    std::array<DevBuf, kernel::cuda::kNumSlots> f_bias; // biases (o_proj's is used by the losses)
    DevBuf cap_attn, cap_o, cap_mlp, cap_down;          // captured inputs [n_tokens, in]
    DevBuf ref_attn, ref_mlp;                           // float block outputs [n_tokens, hidden]
    DevBuf cand, y, gu, act, s_dev;                     // candidates and loss scratch
    uint64_t peak_gpu = 0;

    DevBuf& input_of(Slot s) {
        switch (kernel::cuda::first_slot_of_group(s)) {
        case Slot::kQ:
            return cap_attn;
        case Slot::kO:
            return cap_o;
        case Slot::kGate:
            return cap_mlp;
        default:
            return cap_down;
        }
    }
    const float* bias(Slot s) const { return host.b[size_t(s)].empty() ? nullptr : f_bias[size_t(s)].get(); }

    Status allocate(const kernel::cuda::LayerDims& dims, int64_t layer_chunk_tokens);
    Status upload(HostLayer&& h);
    Status capture();
    Result<double> loss_of(const ScaledGroup& g);
    Status search(ScaledGroup g, std::vector<ScaledGroup>& out, AwqModelResult& result);
    Status fold(std::vector<ScaledGroup>& groups);
    Status finish(int64_t li, const std::vector<ScaledGroup>& groups, AwqModelResult& result, double& t_clip);
};

Status AwqGpuRun::allocate(const kernel::cuda::LayerDims& dims, int64_t layer_chunk_tokens) {
    const int64_t ff = dims.ff, q_dim = n_in[size_t(Slot::kO)];
    for (int s = 0; s < kernel::cuda::kNumSlots; ++s) {
        LOWBIT_ASSIGN_OR_RETURN(f[size_t(s)], device_buffer(n_out[size_t(s)] * n_in[size_t(s)]));
        LOWBIT_ASSIGN_OR_RETURN(f_bias[size_t(s)], device_buffer(n_out[size_t(s)]));
    }
    LOWBIT_ASSIGN_OR_RETURN(cap_attn, device_buffer(n_tokens * hidden));
    LOWBIT_ASSIGN_OR_RETURN(cap_o, device_buffer(n_tokens * q_dim));
    LOWBIT_ASSIGN_OR_RETURN(cap_mlp, device_buffer(n_tokens * hidden));
    LOWBIT_ASSIGN_OR_RETURN(cap_down, device_buffer(n_tokens * ff));
    LOWBIT_ASSIGN_OR_RETURN(ref_attn, device_buffer(n_tokens * hidden));
    LOWBIT_ASSIGN_OR_RETURN(ref_mlp, device_buffer(n_tokens * hidden));
    LOWBIT_ASSIGN_OR_RETURN(cand, device_buffer(std::max({2 * ff * hidden, hidden * ff, hidden * q_dim})));
    LOWBIT_ASSIGN_OR_RETURN(y, device_buffer(std::max(chunk, layer_chunk_tokens) * hidden));
    LOWBIT_ASSIGN_OR_RETURN(gu, device_buffer(chunk * 2 * ff));
    LOWBIT_ASSIGN_OR_RETURN(act, device_buffer(chunk * ff));
    LOWBIT_ASSIGN_OR_RETURN(s_dev, device_buffer(std::max(hidden, ff)));
    return {};
}

// The layer's float tensors into the runner and into f / f_bias.
Status AwqGpuRun::upload(HostLayer&& h) {
    host = std::move(h);
    for (int s = 0; s < kernel::cuda::kNumSlots; ++s) {
        const auto& w = host.w[size_t(s)];
        const auto& b = host.b[size_t(s)];
        LOWBIT_TRY(layer->set_linear(Slot(s), w.data(), b.empty() ? nullptr : b.data()));
        LOWBIT_TRY(ops->copy(f[size_t(s)].get(), layer->device_weight(Slot(s)), int64_t(w.size()))); // on the device
        if (!b.empty()) LOWBIT_TRY(ops->to_device(f_bias[size_t(s)].get(), b.data(), int64_t(b.size())));
    }
    return layer->set_norms(host.attn_norm.data(), host.ffn_norm.data());
}

// One statistics pass: the inputs of every input group for all tokens; then the float block outputs.
Status AwqGpuRun::capture() {
    std::array<int64_t, kernel::cuda::kNumSlots> row{};
    auto observer = [&](Slot first, const float* x, int64_t n, int64_t k) -> Status {
        DevBuf& dst = input_of(first);
        LOWBIT_TRY(ops->copy(dst.get() + row[size_t(first)] * k, x, n * k));
        row[size_t(first)] += n;
        return {};
    };
    LOWBIT_TRY(layer->forward(false, observer));
    const int64_t q_dim = n_in[size_t(Slot::kO)], ff = n_in[size_t(Slot::kDown)];
    LOWBIT_TRY(
        ops->linear(cap_o.get(), n_tokens, f[size_t(Slot::kO)].get(), hidden, q_dim, bias(Slot::kO), ref_attn.get()));
    return ops->linear(cap_down.get(), n_tokens, f[size_t(Slot::kDown)].get(), hidden, ff, nullptr, ref_mlp.get());
}

// The block loss of the group's current candidates (already written: q/k/v into the runner's slots, the others
// into `cand`), as the CPU job's: mean squared error against the float block output.
Result<double> AwqGpuRun::loss_of(const ScaledGroup& g) {
    LOWBIT_TRY(ops->reset_loss());
    const int64_t q_dim = n_in[size_t(Slot::kO)], ff = n_in[size_t(Slot::kDown)];
    const Slot first = g.linears[0];
    if (first == Slot::kQ) { // the layer itself up to o_proj's input, then the float o_proj
        int64_t row = 0;
        auto observer = [&](Slot s, const float* x, int64_t n, int64_t) -> Status {
            if (s != Slot::kO) return {};
            LOWBIT_TRY(ops->linear(x, n, f[size_t(Slot::kO)].get(), hidden, q_dim, bias(Slot::kO), y.get()));
            LOWBIT_TRY(ops->add_sq_diff(y.get(), ref_attn.get() + row * hidden, n * hidden));
            row += n;
            return {};
        };
        LOWBIT_TRY(layer->forward(false, observer, Slot::kO));
    } else {
        for (int64_t t = 0; t < n_tokens; t += chunk) {
            const int64_t n = std::min(chunk, n_tokens - t);
            if (first == Slot::kO) {
                LOWBIT_TRY(ops->linear(cap_o.get() + t * q_dim, n, cand.get(), hidden, q_dim, bias(Slot::kO), y.get()));
                LOWBIT_TRY(ops->add_sq_diff(y.get(), ref_attn.get() + t * hidden, n * hidden));
            } else if (first == Slot::kGate) {
                LOWBIT_TRY(ops->linear(cap_mlp.get() + t * hidden, n, cand.get(), 2 * ff, hidden, nullptr, gu.get()));
                LOWBIT_TRY(ops->silu_mul(gu.get(), act.get(), n, ff));
                LOWBIT_TRY(ops->linear(act.get(), n, f[size_t(Slot::kDown)].get(), hidden, ff, nullptr, y.get()));
                LOWBIT_TRY(ops->add_sq_diff(y.get(), ref_mlp.get() + t * hidden, n * hidden));
            } else {
                LOWBIT_TRY(ops->linear(cap_down.get() + t * ff, n, cand.get(), hidden, ff, nullptr, y.get()));
                LOWBIT_TRY(ops->add_sq_diff(y.get(), ref_mlp.get() + t * hidden, n * hidden));
            }
        }
    }
    LOWBIT_ASSIGN_OR_RETURN(double se, ops->loss());
    return se / double(n_tokens * hidden);
}

// _search_best_scale for one group on the float weights (search_best_scale's loop, candidates on the device).
Status AwqGpuRun::search(ScaledGroup g, std::vector<ScaledGroup>& out, AwqModelResult& result) {
    const int64_t k = n_in[size_t(g.linears[0])];
    LOWBIT_TRY(qa::validate(a, k));
    std::vector<qa::DeviceLinearRef> refs;
    for (Slot s : g.linears) refs.push_back({f[size_t(s)].get(), n_out[size_t(s)]});
    LOWBIT_ASSIGN_OR_RETURN(std::vector<float> x_mean,
                            ops->channel_mean_abs(input_of(g.linears[0]).get(), n_tokens, k));
    LOWBIT_ASSIGN_OR_RETURN(std::vector<float> w_mean,
                            ops->weight_mean(refs.data(), int64_t(refs.size()), k, a.group_size));
    qa::ScaleSearch best;
    double best_loss = std::numeric_limits<double>::infinity();
    for (int i = 0; i < a.n_grid; ++i) {
        const double ratio = double(i) / double(a.n_grid);
        std::vector<float> s = qa::ratio_scales(x_mean, w_mean, ratio, a.duo_scaling);
        LOWBIT_TRY(ops->to_device(s_dev.get(), s.data(), k));
        int64_t at = 0;
        for (Slot sl : g.linears) {
            float* dst = g.linears[0] == Slot::kQ ? layer->device_weight(sl) : cand.get() + at;
            LOWBIT_TRY(ops->scaled_pseudo_quantize(f[size_t(sl)].get(), n_out[size_t(sl)], k, s_dev.get(), dst, a));
            at += n_out[size_t(sl)] * k;
        }
        LOWBIT_ASSIGN_OR_RETURN(double loss, loss_of(g));
        best.losses.push_back(loss);
        if (loss < best_loss) {
            best_loss = loss, best.best_index = i, best.best_ratio = ratio;
            best.scales = std::move(s);
        }
    }
    if (g.linears[0] == Slot::kQ) // the runner gets its float q/k/v back (f is still float: folding comes later)
        for (Slot sl : g.linears)
            LOWBIT_TRY(ops->copy(layer->device_weight(sl), f[size_t(sl)].get(), n_out[size_t(sl)] * k));
    if (best.best_index < 0)
        return make_error(ErrorCode::kBadInput, "awq scale search: every candidate gave a non-finite loss "
                                                "(non-finite weights or activations?)");
    result.best_ratio[g.prev_op] = best.best_ratio;
    if (o->on_scales) o->on_scales(g.prev_op, best);
    g.scales = std::move(best.scales);
    out.push_back(std::move(g));
    return {};
}

// apply_scale on the device copies: the group's columns *= s, the previous linear's rows /= s (its bias and the
// norms on the host), the captured inputs /= s (what the clip search sees).
Status AwqGpuRun::fold(std::vector<ScaledGroup>& groups) {
    for (const ScaledGroup& g : groups) {
        const std::vector<float>& s = g.scales;
        const int64_t k = int64_t(s.size());
        LOWBIT_TRY(ops->to_device(s_dev.get(), s.data(), k));
        for (Slot sl : g.linears)
            LOWBIT_TRY(ops->scale_columns(f[size_t(sl)].get(), n_out[size_t(sl)], k, s_dev.get(), false));
        if (g.prev_linear) {
            const size_t p = size_t(*g.prev_linear);
            LOWBIT_TRY(ops->scale_rows(f[p].get(), n_out[p], n_in[p], s_dev.get(), true));
            if (*g.prev_linear == Slot::kV)
                for (size_t i = 0; i < host.b[p].size(); ++i) host.b[p][i] /= s[i];
        } else {
            auto& norm = g.prev_attn_norm ? host.attn_norm : host.ffn_norm;
            for (size_t i = 0; i < s.size(); ++i) norm[i] /= s[i];
        }
        LOWBIT_TRY(ops->scale_columns(input_of(g.linears[0]).get(), n_tokens, k, s_dev.get(), true));
    }
    return {};
}

// Clip (all but q/k), quantize with f16 scales, record, and set the runner up for the propagation pass.
Status AwqGpuRun::finish(int64_t li, const std::vector<ScaledGroup>& groups, AwqModelResult& result, double& t_clip) {
    const std::string p = hf_layer_prefix(li);
    const auto tc = Clock::now();
    if (o->clip)
        for (Slot s : {Slot::kV, Slot::kO, Slot::kGate, Slot::kUp, Slot::kDown})
            LOWBIT_TRY(
                ops->clip(f[size_t(s)].get(), n_out[size_t(s)], n_in[size_t(s)], input_of(s).get(), n_tokens, a));
    peak_gpu = std::max(peak_gpu, gpu_used_now());
    t_clip += seconds_since(tc);
    for (int s = 0; s < kernel::cuda::kNumSlots; ++s) {
        qa::GroupQuant gq;
        LOWBIT_TRY(ops->quantize(f[size_t(s)].get(), n_out[size_t(s)], n_in[size_t(s)], a, gq)); // f = s (q - z)
        scheme::awq::AwqLinear lin;
        lin.bits = o->bits, lin.n_out = n_out[size_t(s)], lin.n_in = n_in[size_t(s)], lin.group_size = o->group_size;
        lin.codes = std::move(gq.codes), lin.scales = std::move(gq.scales), lin.zeros = std::move(gq.zeros);
        result.linears[p + model::linear_hf_name(static_cast<model::LinearId>(s))] = std::move(lin);
    }
    result.replaced[p + "input_layernorm.weight"] = host.attn_norm;
    result.replaced[p + "post_attention_layernorm.weight"] = host.ffn_norm;
    for (const ScaledGroup& g : groups)
        if (g.prev_linear == Slot::kV && !host.b[size_t(Slot::kV)].empty())
            result.replaced[p + "self_attn.v_proj.bias"] = host.b[size_t(Slot::kV)];
    if (!o->propagate_quantized) return {}; // the runner still holds the float layer (AutoAWQ's propagation)
    for (int s = 0; s < kernel::cuda::kNumSlots; ++s) {
        const auto& b = host.b[size_t(s)];
        LOWBIT_TRY(layer->set_linear(Slot(s), host.w[size_t(s)].data(), b.empty() ? nullptr : b.data())); // bias
        LOWBIT_TRY(ops->copy(layer->device_weight(Slot(s)), f[size_t(s)].get(), n_out[size_t(s)] * n_in[size_t(s)]));
    }
    return layer->set_norms(host.attn_norm.data(), host.ffn_norm.data());
}

} // namespace

Result<AwqModelResult> awq_quantize_model_gpu(std::shared_ptr<const format::TensorStore> store,
                                              const format::ModelConfig& config, const CalibSamples& samples,
                                              const AwqJobOptions& o, const AwqGpuSettings& gpu) {
    LOWBIT_TRY(check_awq_options(o, config));
    if (o.fold_only) return make_error(ErrorCode::kUnsupported, "awq fold_only (a test hook) runs on the CPU job only");
    if (samples.empty() || samples[0].empty()) return make_error(ErrorCode::kUsage, "AWQ needs calibration samples");
    const int64_t n_samples = int64_t(samples.size()), seqlen = int64_t(samples[0].size());
    for (const auto& s : samples)
        if (int64_t(s.size()) != seqlen) return make_error(ErrorCode::kUsage, "calibration samples differ in length");
    const auto t0 = Clock::now();
    LOWBIT_ASSIGN_OR_RETURN(const kernel::cuda::LayerDims dims, layer_dims(config));
    AwqGpuRun run;
    run.o = &o, run.a = awq_options(o);
    run.n_out = slot_n_out(dims), run.n_in = slot_n_in(dims);
    run.n_tokens = n_samples * seqlen, run.hidden = dims.hidden;
    if (gpu.chunk_tokens > 0) run.chunk = gpu.chunk_tokens;
    run.chunk = std::min(run.chunk, run.n_tokens);
    LOWBIT_ASSIGN_OR_RETURN(
        run.layer, CalibLayer::create(dims, n_samples, seqlen,
                                      gpu.tf32 ? kernel::cuda::Precision::kTF32 : kernel::cuda::Precision::kF32));
    LOWBIT_ASSIGN_OR_RETURN(run.ops, qa::AwqCuda::create(run.layer->stream(), gpu.tf32));
    LOWBIT_TRY(run.allocate(dims, run.layer->chunk_samples() * seqlen));

    AwqModelResult result;
    {
        LOWBIT_ASSIGN_OR_RETURN(std::vector<float> hidden, embed_samples(store, config, samples, "AWQ"));
        LOWBIT_TRY(run.layer->set_hidden(hidden.data(), run.n_tokens));
    } // from here the hidden states live on the device only
    result.activation_bytes =
        uint64_t(run.n_tokens) * uint64_t(4 * dims.hidden + run.n_in[size_t(Slot::kO)] + dims.ff) * sizeof(float);
    double t_load = 0, t_capture = 0, t_search = 0, t_clip = 0, t_finish = 0, t_prop = 0;
    auto read_async = [&](int64_t li) {
        return std::async(std::launch::async, [&, li] {
            return read_host_layer(*store, li, config.hidden_size, run.n_out, run.n_in, "AWQ");
        });
    };
    std::future<Result<HostLayer>> next = read_async(0);
    for (int64_t li = 0; li < config.n_layers; ++li) {
        const auto tl = Clock::now();
        Result<HostLayer> h = next.get(); // waits only when reading is slower than the GPU work of a layer
        if (!h.ok()) return std::move(h).error();
        LOWBIT_TRY(run.upload(std::move(*h)));
        if (li + 1 < config.n_layers) next = read_async(li + 1);
        uint64_t weight_bytes = 0;
        for (const auto& w : run.host.w) weight_bytes += w.size() * sizeof(float);
        result.peak_layer_bytes = std::max(result.peak_layer_bytes, weight_bytes);
        t_load += seconds_since(tl);

        auto tp = Clock::now();
        LOWBIT_TRY(run.capture());
        t_capture += seconds_since(tp);
        tp = Clock::now();
        const std::string p = hf_layer_prefix(li);
        std::vector<ScaledGroup> groups;
        LOWBIT_TRY(run.search({p + "input_layernorm", std::nullopt, true, {Slot::kQ, Slot::kK, Slot::kV}, {}}, groups,
                              result));
        const size_t v = size_t(Slot::kV), ov = size_t(Slot::kO);
        if (run.n_out[v] == run.n_out[ov] && run.n_in[v] == run.n_in[ov]) // AutoAWQ: only without GQA
            LOWBIT_TRY(run.search({p + "self_attn.v_proj", Slot::kV, false, {Slot::kO}, {}}, groups, result));
        LOWBIT_TRY(run.search({p + "post_attention_layernorm", std::nullopt, false, {Slot::kGate, Slot::kUp}, {}},
                              groups, result));
        LOWBIT_TRY(run.search({p + "mlp.up_proj", Slot::kUp, false, {Slot::kDown}, {}}, groups, result));
        run.peak_gpu = std::max(run.peak_gpu, gpu_used_now());
        t_search += seconds_since(tp);
        tp = Clock::now();
        LOWBIT_TRY(run.fold(groups));
        LOWBIT_TRY(run.finish(li, groups, result, t_clip));
        t_finish += seconds_since(tp);
        tp = Clock::now();
        LOWBIT_TRY(run.layer->forward(true, {})); // the next layer's inputs
        t_prop += seconds_since(tp);
        log_info("awq (cuda): layer {}/{} done in {:.2f} s (ratios {:.2f} {:.2f} {:.2f}); GPU memory in use {:.2f} GiB",
                 li + 1, config.n_layers, seconds_since(tl), result.best_ratio[p + "input_layernorm"],
                 result.best_ratio[p + "post_attention_layernorm"], result.best_ratio[p + "mlp.up_proj"],
                 double(gpu_used_now()) / (1 << 30));
    }
    result.seconds_search = t_search;
    result.seconds_clip = t_clip;
    result.seconds_forward = t_capture + t_prop;
    log_info("awq (cuda): {:.2f} s total (weights read wait + upload {:.2f} s, capture passes {:.2f} s, scale search "
             "{:.2f} s, fold + clip + quantize {:.2f} s of which clip {:.2f} s, propagation {:.2f} s); peak GPU memory "
             "in use {:.2f} GiB (layer runner {:.2f} GiB, AWQ workspace {:.2f} GiB); peak host RSS {:.2f} GiB",
             seconds_since(t0), t_load, t_capture, t_search, t_finish, t_clip, t_prop, double(run.peak_gpu) / (1 << 30),
             double(run.layer->device_bytes()) / (1 << 30), double(run.ops->workspace_bytes()) / (1 << 30),
             double(peak_host_rss_bytes()) / (1 << 30));
    return result;
}

Result<AwqModelResult> awq_quantize_model_on(const std::string& device,
                                             std::shared_ptr<const format::TensorStore> store,
                                             const format::ModelConfig& config, const CalibSamples& samples,
                                             const AwqJobOptions& options, ThreadPool* pool) {
    LOWBIT_ASSIGN_OR_RETURN(const bool cuda, resolve_calib_device(device, "AWQ", !options.fold_only,
                                                                  "awq fold_only (a test hook) runs on the CPU only"));
    log_info("awq: searching on the {}", cuda ? "GPU (cuda)" : "CPU");
    if (cuda) return awq_quantize_model_gpu(std::move(store), config, samples, options);
    return awq_quantize_model(std::move(store), config, samples, options, pool);
}

} // namespace lowbit::pipeline
