// SPDX-License-Identifier: MIT
// GPTQ streaming driver: layer-by-layer calibration forward passes through a one-layer model view,
// true-sequential groups, quantized-input propagation. Contract in gptq_job.h.
#include "pipeline/quantize/gptq_job.h"

#include "core/finite.h"
#include "core/half.h"
#include "core/log.h"
#include "format/hf/hf_model.h"
#include "model/transformer.h"
#include "pipeline/calibrate/calib_source.h"
#include "pipeline/calibrate/layer_view_store.h"
#include "pipeline/quantize/gptq_gpu_job.h" // --device dispatch
#include "pipeline/quantize/gpu_layer_host.h"
#include "quantize/gptq/gptq.h"
#include "runtime/session.h"
#include "scheme/scheme_list.h"

#include <chrono>
#include <cstring>

namespace lowbit::pipeline {
namespace {

using model::LinearId;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// AutoGPTQ's true_sequential groups of a Llama block.
const std::vector<std::vector<LinearId>>& sequential_groups() {
    static const std::vector<std::vector<LinearId>> g = {{LinearId::kQ, LinearId::kK, LinearId::kV},
                                                         {LinearId::kO},
                                                         {LinearId::kGate, LinearId::kUp},
                                                         {LinearId::kDown}};
    return g;
}
const std::vector<std::vector<LinearId>>& all_at_once() {
    static const std::vector<std::vector<LinearId>> g = {
        {LinearId::kQ, LinearId::kK, LinearId::kV, LinearId::kO, LinearId::kGate, LinearId::kUp, LinearId::kDown}};
    return g;
}

Result<std::vector<float>> load_f32(const format::TensorStore& store, const std::string& name) {
    LOWBIT_ASSIGN_OR_RETURN(TensorView v, store.view(name));
    const scheme::SchemeTraits* s = scheme::find_scheme(v.dtype);
    if (!s || !s->dequantize_row || v.shape.n_dims != 2)
        return make_error(ErrorCode::kUnsupported, "GPTQ needs 2-D f32/f16/bf16 weights; tensor '" + name + "' is " +
                                                       std::string(dtype_name(v.dtype)) + " " + v.shape.to_string());
    std::vector<float> out(size_t(v.n_elems()));
    s->dequantize_row(v.data, out.data(), v.n_elems());
    LOWBIT_TRY(check_finite_weights(out.data(), v.n_elems(), v.shape[1], name));
    return out;
}

} // namespace

Status check_gptq_options(const GptqJobOptions& o, const format::ModelConfig& c) {
    if (o.bits != 2 && o.bits != 3 && o.bits != 4 && o.bits != 8)
        return make_error(ErrorCode::kUsage, "--bits for gptq must be 2, 3, 4 or 8, got " + std::to_string(o.bits));
    if (o.group_size != -1 && o.group_size < 1)
        return make_error(ErrorCode::kUsage, "--group-size must be -1 or >= 1, got " + std::to_string(o.group_size));
    if (!(o.damp_percent > 0.0 && o.damp_percent <= 1.0))
        return make_error(ErrorCode::kUsage, "--damp must be in (0, 1], got " + std::to_string(o.damp_percent));
    if (o.static_groups && !o.desc_act)
        log_warn("--static-groups has no effect without --desc-act (groups are already k / group_size)");
    if (c.n_layers < 1 || c.hidden_size < 1)
        return make_error(ErrorCode::kBadInput, "model config has no layers or hidden size");
    return {};
}

Status emit_linear(GptqModelResult& result, const GptqJobOptions& options, const std::string& module,
                   scheme::gptq::GptqLinear&& linear) {
    if (options.sink) return options.sink(module, std::move(linear));
    result.linears[module] = std::move(linear);
    return {};
}

Result<GptqModelResult> gptq_quantize_model(std::shared_ptr<const format::TensorStore> store,
                                            const format::ModelConfig& config, const CalibSamples& samples,
                                            const GptqJobOptions& o, ThreadPool* pool) {
    LOWBIT_TRY(check_gptq_options(o, config));
    const auto t0 = Clock::now();
    LOWBIT_ASSIGN_OR_RETURN(std::vector<float> hidden, embed_samples(store, config, samples, "GPTQ")); // [N*L, hidden]
    const int64_t n_samples = int64_t(samples.size()), seqlen = int64_t(samples[0].size());
    GptqModelResult result;
    result.activation_bytes = hidden.size() * sizeof(float);

    LayerPass run(config, pool, seqlen);
    quantize::gptq::GptqOptions gopt;
    gopt.bits = o.bits, gopt.group_size = o.group_size, gopt.sym = o.sym, gopt.desc_act = o.desc_act;
    gopt.static_groups = o.static_groups, gopt.damp_percent = o.damp_percent;
    double t_gptq = 0;
    const auto& groups = o.true_sequential ? sequential_groups() : all_at_once();
    for (int64_t layer = 0; layer < config.n_layers; ++layer) {
        run.view = std::make_shared<LayerViewStore>(store, layer);
        uint64_t layer_bytes = 0;
        for (const auto& group : groups) {
            quantize::HessianSet hs;
            hs.alias(int(LinearId::kK), int(LinearId::kQ));
            hs.alias(int(LinearId::kV), int(LinearId::kQ));
            hs.alias(int(LinearId::kUp), int(LinearId::kGate));
            auto observer = [&](int64_t, LinearId id, const float* x, int64_t n, int64_t n_cols) {
                for (LinearId g : group)
                    if (g == id) hs.add(int(id), x, n, n_cols);
            };
            LOWBIT_TRY(run.pass(hidden, n_samples, false, observer));
            const auto tq = Clock::now();
            for (LinearId id : group) {
                const std::string module = hf_layer_prefix(layer) + model::linear_hf_name(id);
                const std::string name = module + ".weight";
                LOWBIT_ASSIGN_OR_RETURN(std::vector<float> w, load_f32(*store, name));
                const auto* info = store->find(name);
                const int64_t n_out = info->shape[0], n_in = info->shape[1];
                quantize::CalibStats stats = hs.stats(int(id));
                if (stats.n_cols != n_in)
                    return make_error(ErrorCode::kInternal, "no calibration statistics for '" + name + "'");
                if (o.on_stats) o.on_stats(module, stats);
                layer_bytes += w.size() * sizeof(float) + stats.hessian.size() * sizeof(double);
                if (o.quantize_linear) { // GGUF grids: the hook quantizes and keeps the bytes
                    LOWBIT_ASSIGN_OR_RETURN(
                        std::vector<float> deq,
                        o.quantize_linear(module, w, n_out, n_in, std::move(stats.hessian), result.loss[module]));
                    if (o.propagate_quantized) LOWBIT_TRY(run.view->set_override(name, std::move(deq)));
                    continue;
                }
                LOWBIT_TRY(quantize::gptq::validate(gopt, n_in));
                LOWBIT_ASSIGN_OR_RETURN(
                    auto q, quantize::gptq::gptq_quantize(w.data(), n_out, n_in, std::move(stats.hessian), gopt));
                scheme::gptq::GptqLinear lin;
                lin.bits = o.bits, lin.n_out = n_out, lin.n_in = n_in, lin.n_groups = q.n_groups;
                lin.codes = std::move(q.codes), lin.zeros = std::move(q.zeros), lin.g_idx = std::move(q.g_idx);
                lin.scales = std::move(q.scales);
                for (float& s : lin.scales) s = f16_to_f32(f32_to_f16(s)); // what the checkpoint stores
                LOWBIT_TRY(scheme::gptq::validate(lin));
                if (o.propagate_quantized) LOWBIT_TRY(run.view->set_override(name, scheme::gptq::dequantize(lin)));
                result.loss[module] = q.loss;
                LOWBIT_TRY(emit_linear(result, o, module, std::move(lin)));
            }
            t_gptq += seconds_since(tq);
        }
        result.peak_layer_bytes = std::max(result.peak_layer_bytes, layer_bytes);
        // The next layer's inputs: this layer (quantized when propagating) applied in place.
        LOWBIT_TRY(run.pass(hidden, n_samples, true, {}));
        run.view.reset(); // releases the layer's overrides
        log_info("gptq: layer {}/{} done", layer + 1, config.n_layers);
    }
    result.seconds_gptq = t_gptq;
    result.seconds_forward = seconds_since(t0) - t_gptq;
    return result;
}

Result<QuantizeJobReport> quantize_gptq_to_hf(const QuantizeJobOptions& job, const GptqJobOptions& gptq_in) {
    const auto t0 = Clock::now();
    GptqJobOptions o = gptq_in;
    if (job.bits) o.bits = *job.bits;
    if (job.group_size) o.group_size = *job.group_size;
    if (job.symmetric) o.sym = *job.symmetric;
    if (job.input.empty()) return make_error(ErrorCode::kUsage, "quantize needs an input model (-m)");
    if (job.output.empty()) return make_error(ErrorCode::kUsage, "quantize needs an output directory (-o)");
    LOWBIT_ASSIGN_OR_RETURN(
        CalibratedSource src,
        open_calibrated_source(job.input, "gptq", o.calib, job.n_threads, [&](const format::ModelConfig& c) -> Status {
            LOWBIT_TRY(check_gptq_options(o, c));
            return check_calib_device(job.device, "GPTQ"); // --device errors before calibration work
        }));
    // The output is laid out now and every linear written as it finishes: the packed model is never in memory.
    LOWBIT_ASSIGN_OR_RETURN(auto out, GptqCheckpointStream::create(job.output, job.input, *src.store, src.config, o));
    o.sink = [&out](const std::string& module, scheme::gptq::GptqLinear&& lin) {
        return out->add(module, std::move(lin));
    };
    LOWBIT_ASSIGN_OR_RETURN(GptqModelResult r, gptq_quantize_model_on(job.device, src.store, src.config, src.samples, o,
                                                                      &src.session->pool()));
    log_info("gptq: activations {:.1f} MiB, largest layer group {:.1f} MiB; forward {:.2f} s, gptq {:.2f} s",
             double(r.activation_bytes) / (1 << 20), double(r.peak_layer_bytes) / (1 << 20), r.seconds_forward,
             r.seconds_gptq);
    QuantizeJobReport report;
    report.method = "gptq";
    report.output = job.output;
    LOWBIT_TRY(out->finish(report));
    report.seconds = seconds_since(t0);
    return report;
}

} // namespace lowbit::pipeline
