// SPDX-License-Identifier: MIT
// AutoAWQ GEMM checkpoint writer (see awq_export.h): packs the linears with scheme::awq, encodes the replaced
// tensors in their source dtype, and builds both configs:
//   config.json quantization_config (transformers AwqConfig): quant_method, bits, group_size, zero_point,
//     version ("gemm"), modules_to_not_convert (null), + meta (lowbit's calibration record)
//   quant_config.json (AutoAWQ AwqConfig.to_dict): zero_point, q_group_size, w_bit, version ("GEMM")
#include "pipeline/quantize/awq_export.h"

#include "core/thread_pool.h"
#include "pipeline/quantize/hf_checkpoint_writer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace lowbit::pipeline {
namespace {

Status check_options(const AwqExportOptions& o) {
    if (o.version != "gemm")
        return make_error(
            ErrorCode::kUnsupported,
            fmt::format("AWQ export writes version 'gemm' only (AutoAWQ WQLinear_GEMM), got '{}'", o.version));
    if (o.bits != 4)
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("AWQ GEMM export packs 4-bit weights only, got {} bits", o.bits));
    if (o.group_size != -1 && o.group_size <= 0)
        return make_error(ErrorCode::kUsage,
                          fmt::format("AWQ group size must be -1 or positive, got {}", o.group_size));
    return ok_status();
}

// A linear must have been quantized with the settings the config announces (readers trust the config).
Status check_linear(const std::string& module, const scheme::awq::AwqLinear& l, const AwqExportOptions& o,
                    const format::TensorStore& store) {
    if (l.bits != o.bits || l.group_size != o.group_size)
        return make_error(ErrorCode::kUsage,
                          fmt::format("AWQ linear '{}' has {} bits / group {} but the export writes {} / {}", module,
                                      l.bits, l.group_size, o.bits, o.group_size));
    const format::TensorInfo* w = store.find(module + ".weight");
    if (w && (w->shape.n_dims != 2 || w->shape[0] != l.n_out || w->shape[1] != l.n_in))
        return make_error(ErrorCode::kUsage, fmt::format("AWQ linear '{}' is {} x {} but '{}.weight' has shape {}",
                                                         module, l.n_out, l.n_in, module, w->shape.to_string()));
    return ok_status();
}

nlohmann::ordered_json transformers_config(const AwqExportOptions& o) {
    nlohmann::ordered_json q;
    q["quant_method"] = "awq";
    q["bits"] = o.bits;
    q["group_size"] = o.group_size;
    q["zero_point"] = o.zero_point;
    q["version"] = o.version;
    q["modules_to_not_convert"] = nullptr;
    q["meta"] = {{"quantizer", {"lowbit"}},
                 {"calib", o.calib.source},
                 {"nsamples", o.calib.n_samples},
                 {"seqlen", o.calib.seqlen},
                 {"seed", o.calib.seed}};
    return q;
}

nlohmann::ordered_json autoawq_config(const AwqExportOptions& o) {
    nlohmann::ordered_json q;
    q["zero_point"] = o.zero_point;
    q["q_group_size"] = o.group_size;
    q["w_bit"] = o.bits;
    q["version"] = "GEMM";
    q["modules_to_not_convert"] = nullptr;
    return q;
}

} // namespace

Status write_awq_checkpoint(const std::string& out_dir, const std::string& src_dir, const format::TensorStore& store,
                            const std::map<std::string, scheme::awq::AwqLinear>& linears,
                            const std::map<std::string, std::vector<float>>& replaced, const AwqExportOptions& o,
                            QuantizeJobReport& report) {
    LOWBIT_TRY(check_options(o));
    HfQuantizedCheckpoint c;
    c.row_type = "awq_int" + std::to_string(o.bits);
    c.quantizer = "lowbit awq";
    // Packed records live until the file is written (4-bit: ~1/8 of the f32 weights).
    // Linears are packed in parallel (a 7B model has 224 of them, 6.5 B codes).
    std::vector<std::pair<const std::string*, const scheme::awq::AwqLinear*>> todo;
    for (const auto& [module, lin] : linears) {
        LOWBIT_TRY(check_linear(module, lin, o, store));
        todo.emplace_back(&module, &lin);
    }
    std::vector<Result<std::vector<scheme::TensorRecord>>> packed(todo.size(), std::vector<scheme::TensorRecord>{});
    ThreadPool::global().parallel_for(int64_t(todo.size()), [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) packed[size_t(i)] = scheme::awq::pack_gemm(*todo[size_t(i)].second);
    });
    for (size_t i = 0; i < todo.size(); ++i) {
        if (!packed[i].ok())
            return make_error(packed[i].error().code,
                              "AWQ linear '" + *todo[i].first + "': " + packed[i].error().message);
        c.modules[*todo[i].first] = std::move(*packed[i]);
    }
    for (const auto& [name, values] : replaced) {
        const format::TensorInfo* info = store.find(name);
        if (!info)
            return make_error(ErrorCode::kUsage, fmt::format("replacement for '{}': no such source tensor", name));
        if (int64_t(values.size()) != info->shape.n_elems())
            return make_error(ErrorCode::kUsage,
                              fmt::format("replacement for '{}' has {} values, the tensor {} {}", name, values.size(),
                                          info->shape.n_elems(), info->shape.to_string()));
        LOWBIT_ASSIGN_OR_RETURN(c.replaced[name], encode_f32_as(info->dtype, values, name));
    }
    c.quantization_config_json = transformers_config(o).dump();
    c.side_files.emplace_back("quant_config.json", autoawq_config(o).dump(2) + "\n");
    return write_hf_quantized_checkpoint(out_dir, src_dir, store, c, report);
}

} // namespace lowbit::pipeline
