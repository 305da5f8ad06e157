// SPDX-License-Identifier: MIT
// HF-style method parameters, shape checks and quantization_config (see hf_method.h).
#include "pipeline/quantize/hf_method.h"

#include "scheme/hqq/hqq.h"
#include "scheme/int_group/int_group.h"
#include "scheme/nf4/nf4.h"

#include <fmt/format.h>

namespace lowbit::pipeline::hfq {
namespace {

Error usage(std::string msg) {
    return Error{ErrorCode::kUsage, std::move(msg)};
}

// transformers' BitsAndBytesConfig.to_dict(): every attribute, sorted as json.dumps(sort_keys=True) writes it.
nlohmann::json bnb_config(bool four_bit, const std::string& quant_type, bool double_quant,
                          const std::string& compute_dtype) {
    nlohmann::json j;
    j["_load_in_4bit"] = four_bit;
    j["_load_in_8bit"] = !four_bit;
    j["bnb_4bit_compute_dtype"] = compute_dtype;
    j["bnb_4bit_quant_storage"] = "uint8";
    j["bnb_4bit_quant_type"] = quant_type;
    j["bnb_4bit_use_double_quant"] = double_quant;
    j["llm_int8_enable_fp32_cpu_offload"] = false;
    j["llm_int8_has_fp16_weight"] = false;
    j["llm_int8_skip_modules"] = nullptr;
    j["llm_int8_threshold"] = 6.0;
    j["load_in_4bit"] = four_bit;
    j["load_in_8bit"] = !four_bit;
    j["quant_method"] = "bitsandbytes";
    return j;
}

} // namespace

Result<HfMethod> resolve_method(const QuantizeJobOptions& o, const std::string& source_dtype) {
    HfMethod m;
    m.method = o.method;
    m.compute_dtype = (source_dtype == "float16" || source_dtype == "float32") ? source_dtype : "bfloat16";
    quantize::SchemeParams& p = m.params;
    const bool four_bit = m.method == "nf4" || m.method == "fp4";
    if (m.method == "rtn" || m.method == "hqq") {
        if (o.block_size) return usage("--block-size applies to nf4/fp4, not '" + m.method + "'");
        p.bits = o.bits.value_or(4);
        const bool ok_bits = m.method == "rtn"
                                 ? (p.bits == 2 || p.bits == 3 || p.bits == 4 || p.bits == 8)
                                 : (p.bits == 1 || p.bits == 2 || p.bits == 3 || p.bits == 4 || p.bits == 8);
        if (!ok_bits)
            return usage(fmt::format("--bits {} is out of range for {} (supported: {})", p.bits, m.method,
                                     m.method == "rtn" ? "2, 3, 4, 8" : "1, 2, 3, 4, 8"));
        p.group_size = o.group_size.value_or(m.method == "rtn" ? 128 : 64);
        if (m.method == "hqq") {
            if (o.symmetric) return usage("--sym/--asym apply to rtn, not hqq (HQQ fits a float zero per group)");
            if (p.group_size <= 0)
                return usage(
                    fmt::format("--group-size {} is invalid for hqq (a positive group size is needed)", p.group_size));
            p.axis = 1;
            p.round_zero = p.bits == 4; // hqq_base_quant_config: round_zero only for 4-bit
            p.optimize = true;
        } else {
            if (p.group_size == 0 || p.group_size < -1)
                return usage(fmt::format("--group-size {} is invalid for rtn (a positive size or -1)", p.group_size));
            p.symmetric = o.symmetric.value_or(false);
        }
        m.type_label = fmt::format("{}{}", m.method == "rtn" ? "int" : "hqq", p.bits);
        return m;
    }
    if (o.group_size) return usage("--group-size applies to rtn/hqq, not '" + m.method + "'");
    if (o.symmetric) return usage("--sym/--asym apply to rtn, not '" + m.method + "'");
    if (m.method == "int8") {
        if (o.bits && *o.bits != 8) return usage(fmt::format("--bits {} is out of range for int8 (8 only)", *o.bits));
        if (o.block_size) return usage("--block-size applies to nf4/fp4, not int8");
        p.bits = 8;
        m.type_label = "int8";
        return m;
    }
    if (!four_bit) return usage("'" + m.method + "' is not an HF-style method");
    if (o.bits && *o.bits != 4)
        return usage(fmt::format("--bits {} is out of range for {} (4 only)", *o.bits, m.method));
    p.bits = 4;
    p.block_size = o.block_size.value_or(64);
    p.double_quant = o.double_quant;
    scheme::nf4::Nf4Params np;
    np.block_size = p.block_size;
    if (Status s = scheme::nf4::validate(np); !s.ok())
        return usage(fmt::format("--block-size {}: {}", p.block_size, s.error().message));
    m.type_label = m.method;
    return m;
}

Status check_linear(const HfMethod& m, const std::string& name, const Shape& shape) {
    Status s = ok_status();
    if (m.method == "rtn") {
        scheme::int_group::IntGroupParams ip{m.params.bits, m.params.group_size, m.params.symmetric};
        s = scheme::int_group::validate(ip, shape.n_rows(), shape.n_cols());
    } else if (m.method == "hqq") {
        scheme::hqq::HqqParams hp;
        hp.nbits = m.params.bits;
        hp.group_size = m.params.group_size;
        hp.axis = m.params.axis;
        s = scheme::hqq::validate(hp, shape);
    }
    if (s.ok()) return s;
    return usage(fmt::format("{} --group-size {} --bits {} cannot store '{}' {}: {}", m.method, m.params.group_size,
                             m.params.bits, name, shape.to_string(), s.error().message));
}

nlohmann::ordered_json quantization_config(const HfMethod& m) {
    const auto& p = m.params;
    nlohmann::json j;
    if (m.method == "nf4" || m.method == "fp4") {
        j = bnb_config(true, m.method, p.double_quant, m.compute_dtype);
    } else if (m.method == "int8") {
        // load_in_8bit=True alone: the 4-bit fields keep transformers' defaults (fp4, no DQ, float32).
        j = bnb_config(false, "fp4", false, "float32");
    } else if (m.method == "hqq") {
        // hqq BaseQuantizeConfig(nbits, group_size, view_as_float=False, axis) as HqqConfig stores it.
        nlohmann::json w;
        w["nbits"] = p.bits;
        w["channel_wise"] = true;
        w["group_size"] = p.group_size;
        w["optimize"] = p.optimize;
        w["round_zero"] = p.round_zero.value_or(p.bits == 4);
        w["axis"] = p.axis;
        w["view_as_float"] = false;
        j["quant_config"] = {{"weight_quant_params", w},
                             {"scale_quant_params", nullptr},
                             {"zero_quant_params", nullptr},
                             {"offload_meta", false}};
        j["quant_method"] = "hqq";
        j["skip_modules"] = {"lm_head"};
    } else {
        j["quant_method"] = "lowbit_rtn";
        j["bits"] = p.bits;
        j["group_size"] = p.group_size;
        j["sym"] = p.symmetric;
        j["layout"] = "int_group_v1";
    }
    return nlohmann::ordered_json::parse(j.dump());
}

} // namespace lowbit::pipeline::hfq
