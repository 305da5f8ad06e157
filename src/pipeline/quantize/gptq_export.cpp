// SPDX-License-Identifier: MIT
// HF GPTQ checkpoint writer: model.safetensors (packed linears + copied tensors), config.json with
// quantization_config, quantize_config.json (AutoGPTQ/GPTQModel keys, ANCHORS §3.1), tokenizer files copied.
#include "core/file.h"
#include "core/log.h"
#include "format/safetensors/safetensors_writer.h"
#include "pipeline/quantize/gptq_job.h"

#include <filesystem>
#include <nlohmann/json.hpp>

namespace lowbit::pipeline {
namespace {

namespace fs = std::filesystem;

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

Status write_text(const std::string& path, const std::string& text) {
    LOWBIT_ASSIGN_OR_RETURN(auto w, AtomicWriter::create(path));
    LOWBIT_TRY(w->write(text));
    return w->commit();
}

QuantizeTypeRow& row_for(QuantizeJobReport& r, const std::string& type) {
    for (auto& row : r.rows)
        if (row.type == type) return row;
    r.rows.push_back({type, 0, 0, 0});
    return r.rows.back();
}

} // namespace

Status write_gptq_checkpoint(const std::string& out_dir, const std::string& src_dir, const format::TensorStore& store,
                             const GptqModelResult& result, const GptqJobOptions& o, QuantizeJobReport& report) {
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    if (ec) return make_error(ErrorCode::kIo, "cannot create output directory '" + out_dir + "': " + ec.message());
    const auto format = o.gptq_v2 ? scheme::gptq::GptqFormat::kV2 : scheme::gptq::GptqFormat::kV1;
    // Packed records live until the file is written (4-bit: ~1/8 of the f32 weights).
    std::vector<scheme::TensorRecord> packed;
    std::vector<safetensors::TensorToWrite> tensors;
    std::map<std::string, size_t> first_record; // module -> index into packed
    int64_t wrapped = 0;
    for (const auto& [module, lin] : result.linears) {
        int64_t w = 0;
        LOWBIT_ASSIGN_OR_RETURN(auto recs, scheme::gptq::pack(lin, format, &w));
        wrapped += w;
        first_record[module] = packed.size();
        for (auto& r : recs) packed.push_back(std::move(r));
    }
    if (wrapped > 0)
        log_warn("gptq: {} zero points are 0 and wrap to {} in the v1 layout (asymmetric v1 limitation); use "
                 "--gptq-v2 to store them exactly",
                 wrapped, (1 << o.bits) - 1);
    const std::string qtype = "gptq_int" + std::to_string(o.bits);
    for (const auto& info : store.tensors()) {
        const std::string suffix = ".weight";
        const bool is_weight = info.name.size() > suffix.size() &&
                               info.name.compare(info.name.size() - suffix.size(), suffix.size(), suffix) == 0;
        const std::string module = is_weight ? info.name.substr(0, info.name.size() - suffix.size()) : "";
        report.n_params += info.shape.n_elems();
        if (auto it = first_record.find(module); is_weight && it != first_record.end()) {
            auto& row = row_for(report, qtype);
            row.n_tensors += 1, row.n_elems += info.shape.n_elems();
            for (size_t i = it->second; i < it->second + 4; ++i) {
                const auto& r = packed[i];
                tensors.push_back({module + "." + r.suffix, r.dtype, r.shape, r.bytes.data(), {}});
                row.n_bytes += r.bytes.size();
                report.n_bytes += r.bytes.size();
            }
            continue;
        }
        LOWBIT_ASSIGN_OR_RETURN(TensorView v, store.view(info.name));
        tensors.push_back({info.name, info.dtype, info.shape, v.data, {}});
        auto& row = row_for(report, std::string(dtype_name(info.dtype)));
        row.n_tensors += 1, row.n_elems += info.shape.n_elems(), row.n_bytes += info.n_bytes;
        report.n_bytes += info.n_bytes;
    }
    safetensors::WriteOptions wo;
    wo.metadata["format"] = "pt";
    wo.metadata["quantizer"] = "lowbit gptq";
    LOWBIT_ASSIGN_OR_RETURN(auto paths, safetensors::write_safetensors(out_dir + "/model.safetensors", tensors, wo));
    // config.json: the source's, with quantization_config added.
    const auto qc = quantization_config(o);
    LOWBIT_ASSIGN_OR_RETURN(std::string cfg_text, read_file_to_string(src_dir + "/config.json"));
    nlohmann::ordered_json cfg;
    try {
        cfg = nlohmann::ordered_json::parse(cfg_text);
    } catch (const nlohmann::json::exception& e) {
        return make_error(ErrorCode::kBadInput, "'" + src_dir + "/config.json' is not valid JSON: " + e.what());
    }
    cfg["quantization_config"] = qc;
    LOWBIT_TRY(write_text(out_dir + "/config.json", cfg.dump(2) + "\n"));
    auto qfile = qc;
    qfile["model_name_or_path"] = out_dir;
    LOWBIT_TRY(write_text(out_dir + "/quantize_config.json", qfile.dump(2) + "\n"));
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                          "generation_config.json"}) {
        const fs::path src = fs::path(src_dir) / f;
        if (!fs::exists(src, ec)) continue;
        fs::copy_file(src, fs::path(out_dir) / f, fs::copy_options::overwrite_existing, ec);
        if (ec) return make_error(ErrorCode::kIo, "cannot copy '" + src.string() + "': " + ec.message());
    }
    report.file_bytes = 0;
    for (const auto& entry : fs::directory_iterator(out_dir, ec))
        if (entry.is_regular_file()) report.file_bytes += entry.file_size();
    (void)paths;
    return {};
}

} // namespace lowbit::pipeline
