// SPDX-License-Identifier: MIT
// HF GPTQ checkpoint writer: model.safetensors (packed linears + copied tensors), config.json with
// quantization_config, quantize_config.json (AutoGPTQ/GPTQModel keys, ANCHORS §3.1), tokenizer files copied.
// The method-independent part lives in hf_checkpoint_writer.cpp; the streamed form (GptqCheckpointStream) in
// hf_checkpoint_stream.cpp, planned here from the shapes alone.
#include "core/log.h"
#include "model/transformer.h"
#include "pipeline/calibrate/layer_view_store.h"
#include "pipeline/quantize/gptq_job.h"
#include "pipeline/quantize/hf_checkpoint_stream.h"
#include "pipeline/quantize/hf_checkpoint_writer.h"

#include <nlohmann/json.hpp>

namespace lowbit::pipeline {
namespace {

nlohmann::ordered_json quantization_config(const GptqJobOptions& o) {
    nlohmann::ordered_json q;
    q["quant_method"] = "gptq";
    q["bits"] = o.bits;
    q["group_size"] = o.group_size;
    q["desc_act"] = o.desc_act;
    q["sym"] = o.sym;
    q["damp_percent"] = o.damp_percent;
    q["true_sequential"] = o.true_sequential;
    q["static_groups"] = o.static_groups;
    q["checkpoint_format"] =
        scheme::gptq::format_name(o.gptq_v2 ? scheme::gptq::GptqFormat::kV2 : scheme::gptq::GptqFormat::kV1);
    q["model_file_base_name"] = "model";
    q["pack_dtype"] = "int32";
    q["meta"] = {{"quantizer", {"lowbit"}},  {"calib", o.calib.source}, {"nsamples", o.calib.n_samples},
                 {"seqlen", o.calib.seqlen}, {"seed", o.calib.seed},    {"propagate_quantized", o.propagate_quantized}};
    return q;
}

// Everything but the packed linears: row type, quantizer, quantization_config, quantize_config.json.
HfQuantizedCheckpoint checkpoint_meta(const std::string& out_dir, const GptqJobOptions& o) {
    HfQuantizedCheckpoint c;
    c.row_type = "gptq_int" + std::to_string(o.bits);
    c.quantizer = "lowbit gptq";
    const auto qc = quantization_config(o);
    c.quantization_config_json = qc.dump();
    auto qfile = qc;
    qfile["model_name_or_path"] = out_dir;
    c.side_files.emplace_back("quantize_config.json", qfile.dump(2) + "\n");
    return c;
}

void warn_wrapped(int64_t wrapped, int bits) {
    if (wrapped > 0)
        log_warn("gptq: {} zero points are 0 and wrap to {} in the v1 layout (asymmetric v1 limitation); use "
                 "--gptq-v2 to store them exactly",
                 wrapped, (1 << bits) - 1);
}

scheme::gptq::GptqFormat format_of(const GptqJobOptions& o) {
    return o.gptq_v2 ? scheme::gptq::GptqFormat::kV2 : scheme::gptq::GptqFormat::kV1;
}

// The records scheme::gptq::pack() makes for an [N, K] linear (gptq_pack.h), bytes left empty: qweight I32
// [K*b/32, N], qzeros I32 [G, N*b/32], scales F16 [G, N], g_idx I32 [K], G = K / group_size (1: per-channel).
Result<std::vector<scheme::TensorRecord>> planned_records(const std::string& module, int64_t n_out, int64_t n_in,
                                                          int bits, int64_t group_size) {
    if ((n_in * bits) % 32 != 0 || (n_out * bits) % 32 != 0)
        return make_error(ErrorCode::kUnsupported, "gptq: '" + module + "' is [" + std::to_string(n_out) + ", " +
                                                       std::to_string(n_in) + "]; the " + std::to_string(bits) +
                                                       "-bit layout needs both sizes times bits divisible by 32");
    if (group_size != -1 && (group_size < 1 || n_in % group_size != 0))
        return make_error(ErrorCode::kUsage, "gptq: group size " + std::to_string(group_size) +
                                                 " does not divide the " + std::to_string(n_in) + " inputs of '" +
                                                 module + "'");
    const int64_t g = group_size == -1 ? 1 : n_in / group_size;
    return std::vector<scheme::TensorRecord>{{"qweight", DType::kI32, Shape{n_in * bits / 32, n_out}, {}},
                                             {"qzeros", DType::kI32, Shape{g, n_out * bits / 32}, {}},
                                             {"scales", DType::kF16, Shape{g, n_out}, {}},
                                             {"g_idx", DType::kI32, Shape{n_in}, {}}};
}

// The linears gptq_quantize_model emits for every layer.
constexpr model::LinearId kLayerLinears[] = {model::LinearId::kQ,   model::LinearId::kK,    model::LinearId::kV,
                                             model::LinearId::kO,   model::LinearId::kGate, model::LinearId::kUp,
                                             model::LinearId::kDown};

} // namespace

Status write_gptq_checkpoint(const std::string& out_dir, const std::string& src_dir, const format::TensorStore& store,
                             const GptqModelResult& result, const GptqJobOptions& o, QuantizeJobReport& report) {
    // Packed records live until the file is written (4-bit: ~1/8 of the f32 weights); GptqCheckpointStream
    // writes the same files without holding them.
    HfQuantizedCheckpoint c = checkpoint_meta(out_dir, o);
    int64_t wrapped = 0;
    for (const auto& [module, lin] : result.linears) {
        int64_t w = 0;
        LOWBIT_ASSIGN_OR_RETURN(c.modules[module], scheme::gptq::pack(lin, format_of(o), &w));
        wrapped += w;
    }
    warn_wrapped(wrapped, o.bits);
    return write_hf_quantized_checkpoint(out_dir, src_dir, store, c, report);
}

GptqCheckpointStream::~GptqCheckpointStream() = default;

Result<std::unique_ptr<GptqCheckpointStream>>
GptqCheckpointStream::create(const std::string& out_dir, const std::string& src_dir, const format::TensorStore& store,
                             const format::ModelConfig& config, const GptqJobOptions& o) {
    HfQuantizedCheckpoint plan = checkpoint_meta(out_dir, o);
    for (int64_t layer = 0; layer < config.n_layers; ++layer)
        for (model::LinearId id : kLayerLinears) {
            const std::string module = hf_layer_prefix(layer) + model::linear_hf_name(id);
            const format::TensorInfo* info = store.find(module + ".weight");
            if (!info || info->shape.n_dims != 2)
                return make_error(ErrorCode::kBadInput, "gptq: the model has no 2-D tensor '" + module + ".weight'");
            LOWBIT_ASSIGN_OR_RETURN(plan.modules[module],
                                    planned_records(module, info->shape[0], info->shape[1], o.bits, o.group_size));
        }
    std::unique_ptr<GptqCheckpointStream> s(new GptqCheckpointStream());
    s->format_ = format_of(o), s->bits_ = o.bits;
    LOWBIT_ASSIGN_OR_RETURN(s->stream_, HfCheckpointStream::create(out_dir, src_dir, store, plan));
    return s;
}

Status GptqCheckpointStream::add(const std::string& module, scheme::gptq::GptqLinear&& linear) {
    int64_t w = 0;
    LOWBIT_ASSIGN_OR_RETURN(auto records, scheme::gptq::pack(linear, format_, &w));
    linear = {}; // 4 bytes per weight: gone before the next linear arrives
    wrapped_zeros_ += w;
    return stream_->add(module, records);
}

Status GptqCheckpointStream::finish(QuantizeJobReport& report) {
    warn_wrapped(wrapped_zeros_, bits_);
    return stream_->finish(report);
}

} // namespace lowbit::pipeline
