// SPDX-License-Identifier: MIT
// Quantized HF checkpoint writing shared by the GPTQ and AWQ exporters (see hf_checkpoint_writer.h).
#include "pipeline/quantize/hf_checkpoint_writer.h"

#include "core/file.h"
#include "core/half.h"
#include "format/safetensors/safetensors_writer.h"

#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace lowbit::pipeline {
namespace {

namespace fs = std::filesystem;

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

// The module prefix of "<prefix>.weight", or "" for other names.
std::string weight_module(const std::string& name) {
    static const std::string suffix = ".weight";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        return "";
    return name.substr(0, name.size() - suffix.size());
}

// Every module and replaced tensor must name a source tensor of the right size (else the output would silently
// keep the float weight).
Status check_names(const format::TensorStore& store, const HfQuantizedCheckpoint& c) {
    for (const auto& [module, records] : c.modules)
        if (!store.find(module + ".weight"))
            return make_error(
                ErrorCode::kUsage,
                fmt::format("quantized linear '{}' has no tensor '{}.weight' in the source", module, module));
    for (const auto& [name, bytes] : c.replaced) {
        const format::TensorInfo* info = store.find(name);
        if (!info)
            return make_error(ErrorCode::kUsage, fmt::format("replacement for '{}': no such source tensor", name));
        if (bytes.size() != info->n_bytes)
            return make_error(ErrorCode::kUsage, fmt::format("replacement for '{}' has {} bytes, the source tensor {}",
                                                             name, bytes.size(), info->n_bytes));
        if (c.modules.count(weight_module(name)))
            return make_error(ErrorCode::kUsage, fmt::format("'{}' is both quantized and replaced", name));
    }
    return ok_status();
}

// config.json: the source's, with quantization_config set (key order kept).
Status write_config(const std::string& out_dir, const std::string& src_dir, const std::string& qc_json) {
    LOWBIT_ASSIGN_OR_RETURN(std::string cfg_text, read_file_to_string(src_dir + "/config.json"));
    nlohmann::ordered_json cfg;
    try {
        cfg = nlohmann::ordered_json::parse(cfg_text);
        cfg["quantization_config"] = nlohmann::ordered_json::parse(qc_json);
    } catch (const nlohmann::json::exception& e) {
        return make_error(ErrorCode::kBadInput, "'" + src_dir + "/config.json' is not valid JSON: " + e.what());
    }
    return write_text(out_dir + "/config.json", cfg.dump(2) + "\n");
}

} // namespace

Status write_hf_side_files(const std::string& out_dir, const std::string& src_dir, const HfQuantizedCheckpoint& c) {
    LOWBIT_TRY(write_config(out_dir, src_dir, c.quantization_config_json));
    for (const auto& [name, text] : c.side_files) LOWBIT_TRY(write_text(out_dir + "/" + name, text));
    std::error_code ec;
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                          "generation_config.json"}) {
        const fs::path src = fs::path(src_dir) / f;
        if (!fs::exists(src, ec)) continue;
        fs::copy_file(src, fs::path(out_dir) / f, fs::copy_options::overwrite_existing, ec);
        if (ec) return make_error(ErrorCode::kIo, "cannot copy '" + src.string() + "': " + ec.message());
    }
    return ok_status();
}

Result<std::vector<uint8_t>> encode_f32_as(DType dtype, std::span<const float> values, const std::string& name) {
    std::vector<uint8_t> out;
    if (dtype == DType::kF32) {
        out.resize(values.size() * 4);
        if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
        return out;
    }
    if (dtype != DType::kF16 && dtype != DType::kBF16)
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("cannot write '{}' as {} (F32, F16 or BF16 expected)", name, dtype_name(dtype)));
    std::vector<uint16_t> h(values.size());
    for (size_t i = 0; i < values.size(); ++i)
        h[i] = dtype == DType::kF16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
    out.resize(h.size() * 2);
    if (!h.empty()) std::memcpy(out.data(), h.data(), out.size());
    return out;
}

Result<std::unique_ptr<StagedDir>> stage_output_dir(const std::string& out_dir) {
    std::error_code ec;
    if (fs::exists(out_dir, ec)) {
        if (!fs::is_directory(out_dir, ec))
            return make_error(ErrorCode::kUsage, "output '" + out_dir +
                                                     "' exists and is not a directory (this method writes a "
                                                     "safetensors directory)");
        if (!fs::is_empty(out_dir, ec) && !fs::exists(fs::path(out_dir) / "config.json", ec))
            return make_error(ErrorCode::kUsage, "output directory '" + out_dir +
                                                     "' exists, is not empty and has no config.json: it does not "
                                                     "look like a model directory, and writing it would replace it "
                                                     "whole; choose a new or model directory");
    }
    return StagedDir::create(out_dir);
}

Status write_hf_quantized_checkpoint(const std::string& final_dir, const std::string& src_dir,
                                     const format::TensorStore& store, const HfQuantizedCheckpoint& c,
                                     QuantizeJobReport& report) {
    LOWBIT_TRY(check_names(store, c));
    std::error_code ec;
    LOWBIT_ASSIGN_OR_RETURN(std::unique_ptr<StagedDir> staged, stage_output_dir(final_dir));
    const std::string& out_dir = staged->path();
    std::vector<safetensors::TensorToWrite> tensors;
    for (const auto& info : store.tensors()) {
        report.n_params += info.shape.n_elems();
        if (auto it = c.modules.find(weight_module(info.name)); it != c.modules.end()) {
            auto& row = row_for(report, c.row_type);
            row.n_tensors += 1, row.n_elems += info.shape.n_elems();
            for (const auto& r : it->second) {
                tensors.push_back({it->first + "." + r.suffix, r.dtype, r.shape, r.bytes.data(), {}});
                row.n_bytes += r.bytes.size();
                report.n_bytes += r.bytes.size();
            }
            continue;
        }
        const void* data = nullptr;
        if (auto it = c.replaced.find(info.name); it != c.replaced.end()) {
            data = it->second.data();
        } else {
            LOWBIT_ASSIGN_OR_RETURN(TensorView v, store.view(info.name));
            data = v.data;
        }
        tensors.push_back({info.name, info.dtype, info.shape, data, {}});
        auto& row = row_for(report, std::string(dtype_name(info.dtype)));
        row.n_tensors += 1, row.n_elems += info.shape.n_elems(), row.n_bytes += info.n_bytes;
        report.n_bytes += info.n_bytes;
    }
    safetensors::WriteOptions wo;
    wo.metadata["format"] = "pt";
    wo.metadata["quantizer"] = c.quantizer;
    LOWBIT_TRY(safetensors::write_safetensors(out_dir + "/model.safetensors", tensors, wo));
    LOWBIT_TRY(write_hf_side_files(out_dir, src_dir, c));
    LOWBIT_TRY(staged->commit());
    report.file_bytes = 0;
    for (const auto& entry : fs::directory_iterator(final_dir, ec))
        if (entry.is_regular_file()) report.file_bytes += entry.file_size();
    return ok_status();
}

} // namespace lowbit::pipeline
