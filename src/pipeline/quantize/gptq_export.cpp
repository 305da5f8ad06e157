// SPDX-License-Identifier: MIT
// HF GPTQ checkpoint writer: model.safetensors (packed linears + copied tensors), config.json with
// quantization_config, quantize_config.json (AutoGPTQ/GPTQModel keys, ANCHORS §3.1), tokenizer files copied.
// The method-independent part lives in hf_checkpoint_writer.cpp.
#include "core/log.h"
#include "pipeline/quantize/gptq_job.h"
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

} // namespace

Status write_gptq_checkpoint(const std::string& out_dir, const std::string& src_dir, const format::TensorStore& store,
                             const GptqModelResult& result, const GptqJobOptions& o, QuantizeJobReport& report) {
    const auto format = o.gptq_v2 ? scheme::gptq::GptqFormat::kV2 : scheme::gptq::GptqFormat::kV1;
    // Packed records live until the file is written (4-bit: ~1/8 of the f32 weights).
    HfQuantizedCheckpoint c;
    c.row_type = "gptq_int" + std::to_string(o.bits);
    c.quantizer = "lowbit gptq";
    int64_t wrapped = 0;
    for (const auto& [module, lin] : result.linears) {
        int64_t w = 0;
        LOWBIT_ASSIGN_OR_RETURN(c.modules[module], scheme::gptq::pack(lin, format, &w));
        wrapped += w;
    }
    if (wrapped > 0)
        log_warn("gptq: {} zero points are 0 and wrap to {} in the v1 layout (asymmetric v1 limitation); use "
                 "--gptq-v2 to store them exactly",
                 wrapped, (1 << o.bits) - 1);
    const auto qc = quantization_config(o);
    c.quantization_config_json = qc.dump();
    auto qfile = qc;
    qfile["model_name_or_path"] = out_dir;
    c.side_files.emplace_back("quantize_config.json", qfile.dump(2) + "\n");
    return write_hf_quantized_checkpoint(out_dir, src_dir, store, c, report);
}

} // namespace lowbit::pipeline
