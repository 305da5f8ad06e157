// SPDX-License-Identifier: MIT
// Loader row for AutoAWQ checkpoints (quant_method "awq", version "gemm"; ANCHORS.md §3.2): qweight [K, N/8]
// interleaved nibbles, qzeros [K/g, N/8] (actual zeros), scales f16 [K/g, N] per Linear, dequantized to dense
// f32 at load. K and N come from qweight; the config gives bits (4), group_size and zero_point. Other AWQ layouts
// (gemv, gemv_fast, marlin, exllama, ipex, llm-awq's own packing) are different tensors: refused, never guessed.
#include "core/log.h"
#include "model/quantized/load_rows.h"
#include "model/quantized/record_io.h"
#include "model/quantized/repack.h"
#include "scheme/awq/awq_pack.h"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>

namespace lowbit::model::quantized {
namespace {

// The first of `keys` present in j (transformers' name, then AutoAWQ's alias), as an integer.
Result<int64_t> int_field(const nlohmann::json& j, std::initializer_list<const char*> keys, int64_t fallback) {
    for (const char* key : keys) {
        const auto it = j.find(key);
        if (it == j.end() || it->is_null()) continue;
        if (!it->is_number_integer())
            return make_error(
                ErrorCode::kBadInput,
                fmt::format("config.json: quantization_config.{} must be an integer, got {}", key, it->dump()));
        return it->get<int64_t>();
    }
    return fallback;
}

Result<std::string> lower_string_field(const nlohmann::json& j, const char* key, const char* fallback) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::string(fallback);
    if (!it->is_string())
        return make_error(ErrorCode::kBadInput,
                          fmt::format("config.json: quantization_config.{} must be a string, got {}", key, it->dump()));
    std::string s = it->get<std::string>();
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s;
}

struct AwqSettings {
    int bits = 4;
    int64_t group_size = 128;
    bool zero_point = true;
};

Result<AwqSettings> parse_settings(const nlohmann::json& qc) {
    AwqSettings s;
    // The tensor layout: "version" (AutoAWQ, transformers 4) or "format" (transformers 5 / GPTQModel); "backend"
    // only picks kernels there, except "llm-awq", which is llm-awq's own packing.
    const bool has_version = qc.contains("version") && !qc["version"].is_null();
    LOWBIT_ASSIGN_OR_RETURN(std::string version, lower_string_field(qc, has_version ? "version" : "format", "gemm"));
    LOWBIT_ASSIGN_OR_RETURN(std::string backend, lower_string_field(qc, "backend", "autoawq"));
    if (backend == "llm-awq") version = "llm-awq";
    if (version != "gemm")
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("AWQ version '{}' is not supported: lowbit reads AutoAWQ 'gemm' checkpoints "
                                      "(qweight [in, out/8], interleaved); '{}' stores its tensors in another layout",
                                      version, version));
    LOWBIT_ASSIGN_OR_RETURN(int64_t bits, int_field(qc, {"bits", "w_bit"}, 4));
    if (bits != 4)
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("AWQ with {} bits is not supported (the GEMM layout packs 4-bit weights)", bits));
    s.bits = int(bits);
    LOWBIT_ASSIGN_OR_RETURN(s.group_size, int_field(qc, {"group_size", "q_group_size"}, 128));
    if (s.group_size != -1 && s.group_size <= 0)
        return make_error(
            ErrorCode::kBadInput,
            fmt::format("config.json: quantization_config.group_size must be -1 or positive, got {}", s.group_size));
    if (const auto zp = qc.find("zero_point"); zp != qc.end() && !zp->is_null()) {
        if (!zp->is_boolean())
            return make_error(ErrorCode::kBadInput, "config.json: quantization_config.zero_point must be a boolean");
        s.zero_point = zp->get<bool>();
    }
    return s;
}

} // namespace

bool matches_awq(const QuantContext&) {
    return true;
}

Status load_awq(const QuantContext& ctx, QuantizedStore& store) {
    LOWBIT_ASSIGN_OR_RETURN(const AwqSettings s, parse_settings(quant_json(ctx)));
    const auto modules = modules_with(store.base(), ".qweight");
    if (modules.empty())
        return make_error(ErrorCode::kBadInput, "config.json says quant_method 'awq' but no tensor ends in '.qweight' "
                                                "(not an AutoAWQ GEMM checkpoint?)");
    // zero_point false: AutoAWQ still stores qzeros (WQLinear_GEMM always has the buffer); they are applied as is.
    log_info("awq: {} quantized linears, {} bits, group {}, zero_point {}, version gemm", modules.size(), s.bits,
             s.group_size, s.zero_point);
    RepackTally tally;
    for (const auto& prefix : modules) {
        LOWBIT_ASSIGN_OR_RETURN(auto records, read_records(store.base(), prefix, [](const std::string& x) {
                                    return x == "qweight" || x == "qzeros" || x == "scales";
                                }));
        const auto* qweight = scheme::find_record(records, "qweight");
        if (!qweight || qweight->dtype != DType::kI32 || qweight->shape.n_dims != 2)
            return make_error(
                ErrorCode::kBadInput,
                fmt::format("tensor '{}.qweight' must be 2-D int32 [in_features, out_features/8]", prefix));
        const int64_t n_in = qweight->shape.dims[0];
        const int64_t n_out = qweight->shape.dims[1] * 32 / s.bits;
        auto lin = scheme::awq::unpack_gemm(records, s.bits, s.group_size, n_out, n_in);
        if (!lin.ok()) return module_error(lin.error(), prefix);
        if (ctx.repack) {
            std::string why;
            if (auto packed = repack_awq(*lin, &why)) {
                hide_records(store, prefix, records);
                put_packed(store, prefix, std::move(*packed));
                ++tally.n_packed;
                continue;
            }
            tally.dense(prefix, why);
        }
        const std::vector<float> w = scheme::awq::dequantize(*lin);
        hide_records(store, prefix, records);
        put_dense(store, prefix, n_out, n_in, w);
    }
    if (ctx.repack) tally.log("awq");
    return ok_status();
}

} // namespace lowbit::model::quantized
