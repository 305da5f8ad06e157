// SPDX-License-Identifier: MIT
// bitsandbytes rows of the loader table: Linear4bit (NF4/FP4) and Linear8bitLt (LLM.int8).
#include "model/quantized/load_rows.h"
#include "model/quantized/record_io.h"
#include "model/quantized/repack.h"
#include "model/weights.h"
#include "scheme/llm_int8/llm_int8.h"
#include "scheme/nf4/nf4.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

namespace lowbit::model::quantized {
namespace {

bool flag(const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_boolean() && it->get<bool>();
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Every "*.weight" of `dtype` still presented after loading, other than those of the `loaded` modules, is a
// quantized weight whose companion record was missing (bind_weights would otherwise report a confusing shape).
Status check_leftovers(QuantizedStore& store, DType dtype, const char* missing_suffix,
                       const std::vector<std::string>& loaded = {}) {
    store.finalize();
    for (const auto& info : store.tensors())
        if (info.dtype == dtype && ends_with(info.name, ".weight") &&
            std::find(loaded.begin(), loaded.end(), info.name.substr(0, info.name.size() - 7)) == loaded.end())
            return make_error(ErrorCode::kBadInput,
                              fmt::format("tensor '{}' is a quantized {} weight but its record '{}{}' is missing",
                                          info.name, dtype_name(dtype),
                                          info.name.substr(0, info.name.size() - std::string(".weight").size()),
                                          missing_suffix));
    return ok_status();
}

Status load_4bit_module(const QuantContext& ctx, QuantizedStore& store, const std::string& prefix,
                        const std::string& want_type, RepackTally& tally) {
    LOWBIT_ASSIGN_OR_RETURN(auto records, read_records(store.base(), prefix, [](const std::string& s) {
                                return s == "weight" || s.rfind("weight.", 0) == 0;
                            }));
    auto t = scheme::nf4::from_records(records);
    if (!t.ok()) return module_error(t.error(), prefix);
    const std::string type = scheme::nf4::quant_type_name(t->params.quant_type);
    if (!want_type.empty() && type != want_type)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("tensor '{}.weight' is {} but config.json's bnb_4bit_quant_type is '{}'", prefix,
                                      type, want_type));
    if (t->shape.n_dims != 2)
        return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}.weight' has quant-state shape {}, expected 2-D",
                                                            prefix, t->shape.to_string()));
    if (ctx.repack) {
        std::string why;
        if (auto packed = repack_nf4(*t, &why)) {
            hide_records(store, prefix, records);
            put_packed(store, prefix, std::move(*packed));
            ++tally.n_packed;
            return ok_status();
        }
        tally.dense(prefix, why);
    }
    std::vector<float> w(size_t(t->n_elems()));
    scheme::nf4::dequantize(*t, w.data());
    hide_records(store, prefix, records);
    put_dense(store, prefix, t->shape.dims[0], t->shape.dims[1], w);
    return ok_status();
}

} // namespace

bool matches_bnb_4bit(const QuantContext& ctx) {
    return flag(quant_json(ctx), "load_in_4bit");
}

Status load_bnb_4bit(const QuantContext& ctx, QuantizedStore& store) {
    const auto qc = quant_json(ctx);
    std::string want_type;
    if (const auto it = qc.find("bnb_4bit_quant_type"); it != qc.end() && it->is_string()) {
        want_type = it->get<std::string>();
        if (want_type != "nf4" && want_type != "fp4")
            return make_error(
                ErrorCode::kUnsupported,
                fmt::format("config.json: bnb_4bit_quant_type '{}' is not supported (nf4, fp4)", want_type));
    }
    RepackTally tally;
    for (const char* type : {"nf4", "fp4"})
        for (const auto& prefix : modules_with(store.base(), fmt::format(".weight.quant_state.bitsandbytes__{}", type)))
            LOWBIT_TRY(load_4bit_module(ctx, store, prefix, want_type, tally));
    if (ctx.repack) tally.log("bitsandbytes 4-bit");
    return check_leftovers(
        store, DType::kU8,
        fmt::format(".weight.quant_state.bitsandbytes__{}", want_type.empty() ? "nf4" : want_type).c_str());
}

bool matches_bnb_8bit(const QuantContext& ctx) {
    return flag(quant_json(ctx), "load_in_8bit");
}

Status load_bnb_8bit(const QuantContext& ctx, QuantizedStore& store) {
    const auto qc = quant_json(ctx);
    float threshold = kDefaultInt8Threshold;
    if (const auto it = qc.find("llm_int8_threshold"); it != qc.end()) {
        if (!it->is_number())
            return make_error(ErrorCode::kBadInput, "config.json: llm_int8_threshold must be a number");
        threshold = it->get<float>();
    }
    const auto modules = modules_with(store.base(), ".SCB");
    for (const auto& prefix : modules) {
        LOWBIT_ASSIGN_OR_RETURN(auto records, read_records(store.base(), prefix, [](const std::string& s) {
                                    return s == "weight" || s == "SCB" || s == "weight_format";
                                }));
        auto t = scheme::llm_int8::from_records(records);
        if (!t.ok()) return module_error(t.error(), prefix);
        hide_records(store, prefix, records);
        if (ctx.dequantize_all) {
            std::vector<float> w(t->weight.size());
            scheme::llm_int8::dequantize(*t, w.data());
            put_dense(store, prefix, t->n_rows, t->n_cols, w);
            continue;
        }
        std::vector<uint8_t> q(t->weight.size()), scb(t->scb.size() * sizeof(float));
        std::memcpy(q.data(), t->weight.data(), q.size());
        std::memcpy(scb.data(), t->scb.data(), scb.size());
        store.put(prefix + ".weight", DType::kI8, Shape{t->n_rows, t->n_cols}, std::move(q));
        store.put(prefix + "." + kInt8ScaleSuffix, DType::kF32, Shape{t->n_rows}, std::move(scb));
    }
    if (!ctx.dequantize_all) { // the threshold only matters to the decomposed matmul
        std::vector<uint8_t> th(sizeof(float));
        std::memcpy(th.data(), &threshold, sizeof(float));
        store.put(kInt8ThresholdTensor, DType::kF32, Shape{1}, std::move(th));
    }
    return check_leftovers(store, DType::kI8, ".SCB", ctx.dequantize_all ? std::vector<std::string>{} : modules);
}

} // namespace lowbit::model::quantized
