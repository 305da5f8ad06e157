// SPDX-License-Identifier: MIT
// GPTQ streaming driver on CUDA (contract in gptq_gpu_job.h): CalibLayer holds the hidden states of every sample,
// DeviceHessian accumulates each input group's H, GptqCudaSolver quantizes the device weights in place.
#include "pipeline/quantize/gptq_gpu_job.h"

#include "core/half.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "kernel/cuda/calib_layer.h"
#include "kernel/cuda/cuda_backend.h"
#include "model/transformer.h"
#include "pipeline/calibrate/calib_source.h"
#include "pipeline/calibrate/layer_view_store.h"
#include "pipeline/quantize/gpu_layer_host.h"
#include "quantize/gptq/gptq_cuda.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <future>
#include <sys/resource.h>

namespace lowbit::pipeline {
namespace {

using kernel::cuda::CalibLayer;
using kernel::cuda::DeviceHessian;
using kernel::cuda::Slot;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

model::LinearId linear_id(Slot s) { // the two enums list the seven linears in the same order
    return static_cast<model::LinearId>(static_cast<int>(s));
}

const std::vector<std::vector<Slot>>& slot_groups(bool true_sequential) {
    static const std::vector<std::vector<Slot>> seq = {
        {Slot::kQ, Slot::kK, Slot::kV}, {Slot::kO}, {Slot::kGate, Slot::kUp}, {Slot::kDown}};
    static const std::vector<std::vector<Slot>> all = {
        {Slot::kQ, Slot::kK, Slot::kV, Slot::kO, Slot::kGate, Slot::kUp, Slot::kDown}};
    return true_sequential ? seq : all;
}

// The CPU driver's checks plus what the device cannot do (geometry is checked by layer_dims).
Status check_options(const GptqJobOptions& o, const format::ModelConfig& c) {
    LOWBIT_TRY(check_gptq_options(o, c));
    if (o.quantize_linear)
        return make_error(ErrorCode::kUnsupported, "GPTQ onto GGUF grids runs on the CPU only (use --device cpu)");
    return {};
}

uint64_t gpu_used_now() {
    auto used = quantize::gptq::cuda_used_bytes();
    return used.ok() ? *used : 0;
}

// The per-layer state of the job: the device layer, one Hessian per input group, the solver.
struct GpuRun {
    std::shared_ptr<const format::TensorStore> store;
    const format::ModelConfig* config = nullptr;
    const GptqJobOptions* o = nullptr;
    quantize::gptq::GptqOptions gopt;
    std::unique_ptr<CalibLayer> layer;
    std::array<std::unique_ptr<DeviceHessian>, kernel::cuda::kNumSlots> hess; // at the first slot of each group
    std::unique_ptr<quantize::gptq::GptqCudaSolver> solver;
    HostLayer host; // the current layer's float weights (linears dropped after upload when propagating Ŵ)
    SlotSizes n_out{}, n_in{};
    uint64_t peak_gpu = 0;
    double seconds_emit = 0; // host: f16 scales, validation, emit_linear (sink or map)

    Status upload_layer(HostLayer&& h, uint64_t& layer_bytes);
    Status quantize_group(int64_t layer_index, const std::vector<Slot>& group, GptqModelResult& result);
};

Status GpuRun::upload_layer(HostLayer&& h, uint64_t& layer_bytes) {
    host = std::move(h);
    for (int s = 0; s < kernel::cuda::kNumSlots; ++s) {
        auto& w = host.w[size_t(s)];
        auto& b = host.b[size_t(s)];
        LOWBIT_TRY(layer->set_linear(Slot(s), w.data(), b.empty() ? nullptr : b.data()));
        layer_bytes += w.size() * sizeof(float);
        if (o->propagate_quantized) w = {}; // Ŵ replaces it on the device for good
    }
    return layer->set_norms(host.attn_norm.data(), host.ffn_norm.data());
}

Status GpuRun::quantize_group(int64_t li, const std::vector<Slot>& group, GptqModelResult& result) {
    for (Slot first : group) {
        if (kernel::cuda::first_slot_of_group(first) != first) continue;
        LOWBIT_ASSIGN_OR_RETURN(const double* h_dev, hess[size_t(first)]->finish_device());
        LOWBIT_TRY(quantize::gptq::validate(gopt, n_in[size_t(first)]));
        LOWBIT_TRY(solver->prepare(h_dev, n_in[size_t(first)], gopt));
        for (Slot s : group) {
            if (kernel::cuda::first_slot_of_group(s) != first) continue;
            const size_t si = size_t(s);
            const std::string module = hf_layer_prefix(li) + model::linear_hf_name(linear_id(s));
            if (o->on_stats) {
                quantize::CalibStats stats;
                stats.n_cols = n_in[si];
                stats.n_tokens = hess[size_t(first)]->n_samples();
                LOWBIT_TRY(hess[size_t(first)]->to_host(stats.hessian));
                o->on_stats(module, stats);
            }
            LOWBIT_ASSIGN_OR_RETURN(
                auto q, solver->quantize_prepared(layer->device_weight(s), n_out[si], gopt, o->propagate_quantized));
            peak_gpu = std::max(peak_gpu, gpu_used_now());
            if (!o->propagate_quantized) // later groups and the next layer see the float weights
                LOWBIT_TRY(layer->set_linear(s, host.w[si].data(), host.b[si].empty() ? nullptr : host.b[si].data()));
            const auto te = Clock::now();
            scheme::gptq::GptqLinear lin;
            lin.bits = o->bits, lin.n_out = n_out[si], lin.n_in = n_in[si], lin.n_groups = q.n_groups;
            lin.codes = std::move(q.codes), lin.zeros = std::move(q.zeros), lin.g_idx = std::move(q.g_idx);
            lin.scales = std::move(q.scales);
            for (float& v : lin.scales) v = f16_to_f32(f32_to_f16(v)); // what the checkpoint stores
            LOWBIT_TRY(scheme::gptq::validate(lin));
            result.loss[module] = q.loss;
            LOWBIT_TRY(emit_linear(result, *o, module, std::move(lin)));
            seconds_emit += seconds_since(te);
        }
    }
    return {};
}

} // namespace

uint64_t peak_host_rss_bytes() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return uint64_t(ru.ru_maxrss) * 1024; // Linux reports KiB
}

Result<GptqModelResult> gptq_quantize_model_gpu(std::shared_ptr<const format::TensorStore> store,
                                                const format::ModelConfig& config, const CalibSamples& samples,
                                                const GptqJobOptions& o, const GptqGpuSettings& gpu) {
    LOWBIT_TRY(check_options(o, config));
    if (samples.empty() || samples[0].empty()) return make_error(ErrorCode::kUsage, "GPTQ needs calibration samples");
    const int64_t n_samples = int64_t(samples.size()), seqlen = int64_t(samples[0].size());
    for (const auto& s : samples)
        if (int64_t(s.size()) != seqlen) return make_error(ErrorCode::kUsage, "calibration samples differ in length");
    const auto t0 = Clock::now();
    LOWBIT_ASSIGN_OR_RETURN(const kernel::cuda::LayerDims dims, layer_dims(config));

    GpuRun run;
    run.store = store, run.config = &config, run.o = &o;
    run.gopt.bits = o.bits, run.gopt.group_size = o.group_size, run.gopt.sym = o.sym, run.gopt.desc_act = o.desc_act;
    run.gopt.static_groups = o.static_groups, run.gopt.damp_percent = o.damp_percent;
    run.n_out = slot_n_out(dims), run.n_in = slot_n_in(dims);
    LOWBIT_ASSIGN_OR_RETURN(
        run.layer, CalibLayer::create(dims, n_samples, seqlen,
                                      gpu.tf32 ? kernel::cuda::Precision::kTF32 : kernel::cuda::Precision::kF32));
    if (gpu.chunk_samples > 0) LOWBIT_TRY(run.layer->set_chunk_samples(gpu.chunk_samples));
    for (Slot s : {Slot::kQ, Slot::kO, Slot::kGate, Slot::kDown}) {
        LOWBIT_ASSIGN_OR_RETURN(
            run.hess[size_t(s)],
            DeviceHessian::create(run.n_in[size_t(s)], run.layer->stream(),
                                  gpu.tf32 ? kernel::cuda::HessianMath::kSplitTf32 : kernel::cuda::HessianMath::kF64));
    }
    LOWBIT_ASSIGN_OR_RETURN(run.solver, quantize::gptq::GptqCudaSolver::create());
    LOWBIT_TRY(run.solver->set_stream(run.layer->stream()));

    GptqModelResult result;
    result.activation_bytes = uint64_t(n_samples * seqlen * config.hidden_size) * sizeof(float);
    {
        LOWBIT_ASSIGN_OR_RETURN(std::vector<float> hidden, embed_samples(store, config, samples, "GPTQ"));
        LOWBIT_TRY(run.layer->set_hidden(hidden.data(), n_samples * seqlen));
    } // the host copy is released: from here the hidden states live on the device only
    double t_gptq = 0, t_load = 0;
    auto read_async = [&](int64_t li) {
        return std::async(std::launch::async, [&, li] {
            return read_host_layer(*store, li, config.hidden_size, run.n_out, run.n_in, "GPTQ");
        });
    };
    std::future<Result<HostLayer>> next = read_async(0);
    for (int64_t li = 0; li < config.n_layers; ++li) {
        const auto tl = Clock::now();
        uint64_t layer_bytes = 0;
        Result<HostLayer> h = next.get(); // waits only when reading is slower than the GPU work of a layer
        if (!h.ok()) return std::move(h).error();
        LOWBIT_TRY(run.upload_layer(std::move(*h), layer_bytes));
        if (li + 1 < config.n_layers) next = read_async(li + 1);
        t_load += seconds_since(tl);
        for (const auto& group : slot_groups(o.true_sequential)) {
            for (Slot s : group)
                if (run.hess[size_t(s)]) {
                    LOWBIT_TRY(run.hess[size_t(s)]->reset());
                    layer_bytes += run.hess[size_t(s)]->device_bytes();
                }
            auto observer = [&](Slot first, const float* x, int64_t n_tokens, int64_t) -> Status {
                for (Slot s : group)
                    if (s == first) return run.hess[size_t(first)]->add(x, n_tokens);
                return {};
            };
            // The pass can stop once the group's last input has been observed (later linears are not needed).
            const Slot last = kernel::cuda::first_slot_of_group(group.back());
            LOWBIT_TRY(run.layer->forward(false, observer, last == Slot::kDown ? std::optional<Slot>{} : last));
            run.peak_gpu = std::max(run.peak_gpu, gpu_used_now());
            const auto tq = Clock::now();
            LOWBIT_TRY(run.quantize_group(li, group, result));
            t_gptq += seconds_since(tq);
        }
        result.peak_layer_bytes = std::max(result.peak_layer_bytes, layer_bytes);
        LOWBIT_TRY(run.layer->forward(true, {})); // the next layer's inputs, through the (quantized) layer
        log_info("gptq (cuda): layer {}/{} done in {:.2f} s; GPU memory in use {:.2f} GiB (peak {:.2f} GiB)", li + 1,
                 config.n_layers, seconds_since(tl), double(gpu_used_now()) / (1 << 30),
                 double(run.peak_gpu) / (1 << 30));
    }
    result.seconds_gptq = t_gptq;
    result.seconds_forward = seconds_since(t0) - t_gptq - t_load;
    log_info("gptq (cuda): {:.2f} s total (weights read wait + upload {:.2f} s, forward+Hessians {:.2f} s, solver "
             "{:.2f} s); peak "
             "GPU memory in use {:.2f} GiB (layer runner {:.2f} GiB, solver workspace {:.2f} GiB); peak host RSS "
             "{:.2f} GiB",
             seconds_since(t0), t_load, result.seconds_forward, t_gptq, double(run.peak_gpu) / (1 << 30),
             double(run.layer->device_bytes()) / (1 << 30), double(run.solver->workspace_bytes()) / (1 << 30),
             double(peak_host_rss_bytes()) / (1 << 30));
    const auto& st = run.solver->times();
    log_info(
        "gptq (cuda): solver: {} factorizations {:.2f} s, {} linears {:.2f} s, downloads {:.2f} s; host emit {:.2f} s",
        st.n_prepare, st.prepare_s, st.n_quantize, st.quantize_s, st.download_s, run.seconds_emit);
    return result;
}

Result<GptqModelResult> gptq_quantize_model_on(const std::string& device,
                                               std::shared_ptr<const format::TensorStore> store,
                                               const format::ModelConfig& config, const CalibSamples& samples,
                                               const GptqJobOptions& options, ThreadPool* pool) {
    LOWBIT_ASSIGN_OR_RETURN(const bool cuda, resolve_calib_device(device, "GPTQ", !options.quantize_linear,
                                                                  "GPTQ onto GGUF grids runs on the CPU only"));
    log_info("gptq: solving on the {}", cuda ? "GPU (cuda)" : "CPU");
    if (cuda) return gptq_quantize_model_gpu(std::move(store), config, samples, options);
    return gptq_quantize_model(std::move(store), config, samples, options, pool);
}

} // namespace lowbit::pipeline
