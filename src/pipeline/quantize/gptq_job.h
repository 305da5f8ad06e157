// SPDX-License-Identifier: MIT
// `lowbit quantize --method gptq`: calibration samples -> layer-by-layer GPTQ (streamed) -> HF GPTQ checkpoint.
// Streaming: the inputs of decoder layer 0 are computed for all samples ([N*L, hidden] f32, the only large
// buffer); then per layer, through a one-layer view of the model (LayerViewStore):
//   true-sequential (default): pass over the samples collecting H of q/k/v -> GPTQ q,k,v -> re-run the layer
//   with them quantized, collect H of o -> GPTQ o -> ... gate/up -> down (AutoGPTQ's true_sequential groups);
//   then the quantized layer maps the inputs to the next layer's inputs in place, and the layer is released.
// Peak memory ≈ N*L*hidden*4 bytes + one layer's f32 weights + H (f64, in_features²); the packed output is
// written as each linear finishes (GptqCheckpointStream), so models larger than RAM quantize (bench/over_ram.sh).
// Output directory: model.safetensors (qweight/qzeros/scales/g_idx per linear, other tensors copied),
// config.json with quantization_config, quantize_config.json, tokenizer/generation files copied.
#pragma once

#include "format/hf/config.h"
#include "format/tensor_store.h"
#include "pipeline/calibrate/calib_data.h"
#include "pipeline/quantize/quantize.h"
#include "quantize/calib/calib_stats.h"
#include "scheme/gptq/gptq_pack.h"

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace lowbit::pipeline {

struct GptqJobOptions {
    int bits = 4;                    // 2, 3, 4, 8
    int64_t group_size = 128;        // -1 = per-channel; else 32/64/128 (any divisor-free size works: last group short)
    bool sym = true;                 // --sym / --asym
    bool desc_act = false;           // --desc-act (act-order, g_idx non-monotone)
    bool static_groups = false;      // --static-groups
    double damp_percent = 0.01;      // --damp
    bool true_sequential = true;     // re-run the layer between the q/k/v, o, gate/up, down groups
    bool propagate_quantized = true; // next layer's inputs from the quantized layer (false: from the float layer)
    bool gptq_v2 = false;            // --gptq-v2: checkpoint_format "gptq_v2" (zeros stored as is)
    CalibOptions calib;              // --calib FILE|self, --nsamples, --seqlen, --seed
    // Test hook: sees the statistics of every linear right before it is quantized (name = HF module prefix
    // "model.layers.3.self_attn.q_proj").
    std::function<void(const std::string& module, const quantize::CalibStats& stats)> on_stats;
    // Streaming output: when set, every finished linear goes here (in layer order) instead of into
    // GptqModelResult::linears, so the packed model never has to sit in memory. Errors abort the job.
    std::function<Status(const std::string& module, scheme::gptq::GptqLinear&& linear)> sink;
    // Replaces the integer grid + HF packing of every linear (GPTQ onto GGUF grids, gptq_gguf.cpp): gets the f32
    // weight [n_out, n_in] (HF order) and its Hessian, quantizes and keeps the result itself, sets `loss`, and
    // returns Ŵ [n_out, n_in] (what later groups and layers see). Errors abort the job.
    std::function<Result<std::vector<float>>(const std::string& module, const std::vector<float>& w, int64_t n_out,
                                             int64_t n_in, std::vector<double>&& hessian, double& loss)>
        quantize_linear;
};

struct GptqModelResult {
    std::map<std::string, scheme::gptq::GptqLinear> linears; // HF module prefix -> quantized linear
    std::map<std::string, double> loss;                      // module -> gptq.py's loss
    uint64_t activation_bytes = 0;                           // the [N*L, hidden] buffer
    uint64_t peak_layer_bytes = 0;                           // largest f32 weights + Hessian of one linear group
    double seconds_forward = 0, seconds_gptq = 0;
};

// kUsage for bits / group size / damping out of range, kBadInput for a config without layers; warns when
// --static-groups has no effect. Every GPTQ driver checks this first.
Status check_gptq_options(const GptqJobOptions& options, const format::ModelConfig& config);

// Hands a finished linear to options.sink when set, else stores it in result.linears. Every driver (CPU, GPU)
// emits through this.
Status emit_linear(GptqModelResult& result, const GptqJobOptions& options, const std::string& module,
                   scheme::gptq::GptqLinear&& linear);

// The streaming driver on any HF-named store (tests use in-memory models). Checks options (kUsage) and shapes.
Result<GptqModelResult> gptq_quantize_model(std::shared_ptr<const format::TensorStore> store,
                                            const format::ModelConfig& config, const CalibSamples& samples,
                                            const GptqJobOptions& options, ThreadPool* pool);

// Writes the HF GPTQ directory `out_dir` from the source model directory (config.json and tokenizer files are
// read from it) and the quantized linears; fills the report rows.
Status write_gptq_checkpoint(const std::string& out_dir, const std::string& src_dir, const format::TensorStore& store,
                             const GptqModelResult& result, const GptqJobOptions& options, QuantizeJobReport& report);

// write_gptq_checkpoint's output, streamed while the job runs (hf_checkpoint_stream.h): create() lays the
// directory out from the shapes alone (every linear's packed records follow from its [N, K], bits and group
// size), add() packs a finished linear and writes it at its offset (use it as GptqJobOptions::sink), finish()
// renames the file into place and writes the JSON / tokenizer files. The files are byte-identical to
// write_gptq_checkpoint's; host memory holds one linear's packed records at a time.
class HfCheckpointStream;

class GptqCheckpointStream {
  public:
    // Plans the seven linears of every layer of `config` (kBadInput when one is missing or not 2-D; kUsage/
    // kUnsupported when its sizes do not fit bits / group size).
    static Result<std::unique_ptr<GptqCheckpointStream>> create(const std::string& out_dir, const std::string& src_dir,
                                                                const format::TensorStore& store,
                                                                const format::ModelConfig& config,
                                                                const GptqJobOptions& options);
    ~GptqCheckpointStream();
    Status add(const std::string& module, scheme::gptq::GptqLinear&& linear);
    Status finish(QuantizeJobReport& report);

  private:
    GptqCheckpointStream() = default;
    std::unique_ptr<HfCheckpointStream> stream_;
    scheme::gptq::GptqFormat format_ = scheme::gptq::GptqFormat::kV1;
    int bits_ = 4;
    int64_t wrapped_zeros_ = 0;
};

// The whole job: open the HF model (-m), load calibration samples, quantize, write (-o). The dispatcher's
// bits / group_size / symmetric, when set, override `gptq`'s.
Result<QuantizeJobReport> quantize_gptq_to_hf(const QuantizeJobOptions& options, const GptqJobOptions& gptq);

} // namespace lowbit::pipeline
