// SPDX-License-Identifier: MIT
// The loader table and wrap_quantized (see quant_loader.h); the rows live in load_*.cpp.
#include "model/quantized/quant_loader.h"

#include "core/file.h"
#include "model/quantized/load_rows.h"
#include "model/weights.h"

#include <cstdlib>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <optional>

namespace lowbit::model::quantized {

// AutoAWQ GEMM (qweight/qzeros/scales, interleaved nibbles): dense f32 at load (load_awq.cpp).
bool matches_awq(const QuantContext& ctx);
Status load_awq(const QuantContext& ctx, QuantizedStore& store);

namespace {

const QuantLoader kLoaders[] = {
    {"bitsandbytes", "load_in_4bit", matches_bnb_4bit, load_bnb_4bit},
    {"bitsandbytes", "load_in_8bit", matches_bnb_8bit, load_bnb_8bit},
    {"hqq", "", matches_hqq, load_hqq},
    {"lowbit_rtn", "", matches_rtn, load_rtn},
    {"gptq", "", matches_gptq, load_gptq},
    {"awq", "gemm", matches_awq, load_awq},
};

// Name endings of the quantized-layout records the loader rows consume (bitsandbytes, GPTQ/AWQ, HQQ, lowbit RTN).
// A file that still presents one of them was not read as the layout it is in.
constexpr const char* kRecordMarkers[] = {".weight.absmax",
                                          ".weight.quant_map",
                                          ".SCB",
                                          ".qweight",
                                          ".qzeros",
                                          ".g_idx",
                                          ".W_q",
                                          ".nested_absmax",
                                          ".quant_state.bitsandbytes__nf4",
                                          ".quant_state.bitsandbytes__fp4"};

// The first tensor named like a quantized-layout record. After loading, ".SCB" is LLM.int8's kept row scale
// (model/weights.h), not a leftover: `loaded` skips it.
const format::TensorInfo* first_quant_record(const format::TensorStore& store, bool loaded = false) {
    for (const auto& info : store.tensors())
        for (const char* marker : kRecordMarkers) {
            const std::string m(marker);
            if (loaded && m == std::string(".") + kInt8ScaleSuffix) continue;
            if (info.name.size() > m.size() && info.name.compare(info.name.size() - m.size(), m.size(), m) == 0)
                return &info;
        }
    return nullptr;
}

} // namespace

std::span<const QuantLoader> quant_loaders() {
    return kLoaders;
}

std::string supported_quant_methods() {
    std::string out;
    for (const auto& row : kLoaders) {
        if (!out.empty()) out += ", ";
        out += row.quant_method;
        if (*row.variant) out += fmt::format(" ({})", row.variant);
    }
    return out;
}

Result<bool> has_quantization_config(const std::string& config_json) {
    const auto j = nlohmann::json::parse(config_json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error(ErrorCode::kBadInput, "config.json is not a JSON object");
    const auto it = j.find("quantization_config");
    if (it == j.end() || it->is_null()) return false;
    if (!it->is_object()) return make_error(ErrorCode::kBadInput, "config.json: quantization_config must be an object");
    return true;
}

namespace {

// The integer at the first of `keys` present in `j` (nested objects are not searched), if any.
std::optional<int64_t> first_int(const nlohmann::json& j, std::initializer_list<const char*> keys) {
    for (const char* k : keys)
        if (const auto it = j.find(k); it != j.end() && it->is_number_integer()) return it->get<int64_t>();
    return std::nullopt;
}

std::string bits_and_group(const nlohmann::json& j) {
    std::string out;
    if (const auto b = first_int(j, {"bits", "nbits", "w_bit"})) out += fmt::format(" int{}", *b);
    if (const auto g = first_int(j, {"group_size", "q_group_size"}))
        out += *g > 0 ? fmt::format(" g{}", *g) : std::string(" per-channel");
    return out;
}

} // namespace

Result<std::string> describe_quantization(const std::string& config_json) {
    LOWBIT_ASSIGN_OR_RETURN(bool quantized, has_quantization_config(config_json));
    if (!quantized) return std::string();
    const auto qc = nlohmann::json::parse(config_json, nullptr, false).at("quantization_config");
    const auto m = qc.find("quant_method");
    const std::string method = m != qc.end() && m->is_string() ? m->get<std::string>() : "unknown method";
    const auto flag = [&](const char* k) {
        const auto it = qc.find(k);
        return it != qc.end() && it->is_boolean() && it->get<bool>();
    };
    if (method == "bitsandbytes") {
        if (flag("load_in_8bit")) return method + " LLM.int8";
        const auto t = qc.find("bnb_4bit_quant_type");
        return method + " " + (t != qc.end() && t->is_string() ? t->get<std::string>() : std::string("4-bit"));
    }
    if (method == "hqq") {
        const auto qcfg = qc.find("quant_config");
        if (qcfg != qc.end() && qcfg->is_object())
            if (const auto w = qcfg->find("weight_quant_params"); w != qcfg->end() && w->is_object())
                return method + bits_and_group(*w);
        return method;
    }
    std::string out = method + bits_and_group(qc);
    if (const auto s = qc.find("sym"); s != qc.end() && s->is_boolean()) out += s->get<bool>() ? " sym" : " asym";
    if (const auto z = qc.find("zero_point"); z != qc.end() && z->is_boolean() && !z->get<bool>()) out += " sym";
    return out;
}

Result<std::shared_ptr<const format::TensorStore>> wrap_quantized(std::shared_ptr<const format::TensorStore> base,
                                                                  const std::string& config_json,
                                                                  const format::ModelConfig& config,
                                                                  bool dequantize_all) {
    LOWBIT_ASSIGN_OR_RETURN(bool quantized, has_quantization_config(config_json));
    if (!quantized) {
        if (const format::TensorInfo* r = first_quant_record(*base))
            return make_error(ErrorCode::kBadInput,
                              fmt::format("tensor '{}' is part of a quantized layout (bitsandbytes, GPTQ, AWQ, HQQ or "
                                          "lowbit RTN) but config.json has no quantization_config: the config is "
                                          "missing or does not belong to these weights (supported: {})",
                                          r->name, supported_quant_methods()));
        return base;
    }
    const auto qc = nlohmann::json::parse(config_json, nullptr, false).at("quantization_config");
    const auto method = qc.find("quant_method");
    if (method == qc.end() || !method->is_string())
        return make_error(ErrorCode::kBadInput, fmt::format("config.json: quantization_config has no quant_method "
                                                            "string (supported: {})",
                                                            supported_quant_methods()));
    QuantContext ctx{qc.dump(), config, dequantize_all};
    const char* dense_env = std::getenv("LOWBIT_HF_DENSE");
    ctx.repack = !dequantize_all && !(dense_env && std::string(dense_env) == "1");
    const QuantLoader* row = nullptr;
    bool method_known = false;
    for (const auto& r : kLoaders) {
        if (*method != r.quant_method) continue;
        method_known = true;
        if (r.matches(ctx)) {
            row = &r;
            break;
        }
    }
    if (!row) {
        const std::string name = method->get<std::string>();
        if (method_known)
            return make_error(ErrorCode::kUnsupported,
                              fmt::format("config.json: quantization_config of quant_method '{}' sets none of the "
                                          "variants lowbit reads (supported: {})",
                                          name, supported_quant_methods()));
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("config.json: quant_method '{}' is not supported (supported: {})", name,
                                      supported_quant_methods()));
    }
    auto store = std::make_shared<QuantizedStore>(std::move(base));
    LOWBIT_TRY(row->load(ctx, *store));
    store->finalize();
    if (const format::TensorInfo* r = first_quant_record(*store, /*loaded=*/true))
        return make_error(ErrorCode::kBadInput,
                          fmt::format("tensor '{}' is a quantized-layout record that config.json's quantization_config "
                                      "(quant_method '{}') does not read: the config does not match the tensors",
                                      r->name, method->get<std::string>()));
    return std::shared_ptr<const format::TensorStore>(std::move(store));
}

Result<std::shared_ptr<const format::TensorStore>> wrap_quantized_dir(std::shared_ptr<const format::TensorStore> base,
                                                                      const std::string& dir,
                                                                      const format::ModelConfig& config,
                                                                      bool dequantize_all) {
    LOWBIT_ASSIGN_OR_RETURN(std::string text, read_file_to_string(dir + "/config.json"));
    return wrap_quantized(std::move(base), text, config, dequantize_all);
}

} // namespace lowbit::model::quantized
