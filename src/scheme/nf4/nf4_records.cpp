// SPDX-License-Identifier: MIT
// NF4/FP4 <-> state-dict records (bitsandbytes QuantState.as_dict(packed=True) + Params4bit data).
// The quant state JSON is written byte-for-byte as Python's json.dumps writes it (", " and ": " separators,
// floats by repr), so a file we write compares equal to one bitsandbytes writes.
#include "scheme/nf4/nf4.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace lowbit::scheme::nf4 {
namespace {

std::string state_suffix(QuantType t) {
    return std::string("weight.quant_state.bitsandbytes__") + quant_type_name(t);
}

std::string state_json(const Nf4Tensor& t) {
    std::string shape = "[";
    for (int i = 0; i < t.shape.n_dims; ++i) shape += (i ? ", " : "") + std::to_string(t.shape[i]);
    shape += "]";
    std::string s = fmt::format(R"({{"quant_type": "{}", "blocksize": {}, "dtype": "{}", "shape": {})",
                                quant_type_name(t.params.quant_type), t.params.block_size, t.params.torch_dtype, shape);
    if (t.params.double_quant)
        s += fmt::format(R"(, "nested_blocksize": {}, "nested_dtype": "float32", "nested_offset": {})",
                         kNestedBlockSize, python_float_repr(double(t.offset)));
    return s + "}";
}

Error bad(std::string msg) {
    return make_error(ErrorCode::kBadInput, std::move(msg));
}

// Parses and checks the quant state JSON; fills params, shape and offset.
Status parse_state(const TensorRecord& rec, QuantType type, Nf4Tensor& t) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(std::string(rec.bytes.begin(), rec.bytes.end()));
        t.params.quant_type = type;
        if (j.at("quant_type").get<std::string>() != quant_type_name(type))
            return bad(fmt::format("'{}' says quant_type '{}' but its name says {}", rec.suffix,
                                   j.at("quant_type").get<std::string>(), quant_type_name(type)));
        t.params.block_size = j.at("blocksize").get<int64_t>();
        t.params.torch_dtype = j.at("dtype").get<std::string>();
        const auto dims = j.at("shape").get<std::vector<int64_t>>();
        if (dims.empty() || dims.size() > size_t(kMaxDims))
            return bad(fmt::format("'{}' has a shape of {} dims (1..{} supported)", rec.suffix, dims.size(), kMaxDims));
        t.shape = Shape();
        for (int64_t d : dims) {
            if (d <= 0 || d > (int64_t(1) << 40))
                return bad(fmt::format("'{}' has a bad dimension {} in its shape", rec.suffix, d));
            t.shape[t.shape.n_dims++] = d;
        }
        t.params.double_quant = j.contains("nested_offset");
        if (t.params.double_quant) {
            if (j.at("nested_blocksize").get<int64_t>() != kNestedBlockSize)
                return make_error(ErrorCode::kUnsupported,
                                  fmt::format("'{}': nested_blocksize {} (only {} is supported, as in bitsandbytes)",
                                              rec.suffix, j.at("nested_blocksize").get<int64_t>(), kNestedBlockSize));
            if (j.at("nested_dtype").get<std::string>() != "float32")
                return make_error(ErrorCode::kUnsupported,
                                  fmt::format("'{}': nested_dtype '{}' (float32 expected)", rec.suffix,
                                              j.at("nested_dtype").get<std::string>()));
            t.offset = j.at("nested_offset").get<float>();
        }
    } catch (const nlohmann::json::exception& e) {
        return bad(fmt::format("'{}' is not a valid bitsandbytes quant state: {}", rec.suffix, e.what()));
    }
    if (Status s = validate(t.params); !s.ok()) return bad(fmt::format("'{}': {}", rec.suffix, s.error().message));
    if (t.shape.n_elems() > (int64_t(1) << 40)) return bad(fmt::format("'{}': shape too large", rec.suffix));
    return ok_status();
}

} // namespace

std::string python_float_repr(double v) {
    if (std::isnan(v)) return "NaN"; // json.dumps spelling
    if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
    if (v == 0.0) return std::signbit(v) ? "-0.0" : "0.0";
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
    std::string sci(buf, r.ptr); // "-d.ddde-05": shortest round-trip digits
    const bool neg = sci[0] == '-';
    if (neg) sci.erase(0, 1);
    const size_t e_pos = sci.find('e');
    const int exp10 = std::stoi(sci.substr(e_pos + 1));
    std::string digits = sci.substr(0, e_pos);
    digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
    std::string out = neg ? "-" : "";
    if (exp10 >= -4 && exp10 < 16) { // Python repr: fixed notation for decimal exponents -4..15
        const size_t int_digits = size_t(std::max(exp10 + 1, 0));
        if (exp10 < 0) {
            out.append("0.").append(size_t(-exp10 - 1), '0').append(digits);
        } else if (int_digits >= digits.size()) {
            out.append(digits).append(int_digits - digits.size(), '0').append(".0");
        } else {
            out.append(digits, 0, int_digits).append(".").append(digits, int_digits, std::string::npos);
        }
    } else {
        out.append(digits, 0, 1);
        if (digits.size() > 1) out.append(".").append(digits, 1, std::string::npos);
        out.append(fmt::format("e{}{:02d}", exp10 < 0 ? '-' : '+', std::abs(exp10)));
    }
    return out;
}

std::vector<TensorRecord> to_records(const Nf4Tensor& t) {
    std::vector<TensorRecord> recs;
    const int64_t n_blocks = t.n_blocks();
    recs.push_back(TensorRecord::from_values("weight", DType::kU8, Shape{int64_t(t.packed.size()), 1}, t.packed));
    if (t.params.double_quant) {
        recs.push_back(TensorRecord::from_values("weight.absmax", DType::kU8, Shape{n_blocks}, t.absmax_q));
    } else {
        recs.push_back(TensorRecord::from_values("weight.absmax", DType::kF32, Shape{n_blocks}, t.absmax));
    }
    recs.push_back(TensorRecord::from_values("weight.quant_map", DType::kF32, Shape{16},
                                             std::vector<float>(t.code.begin(), t.code.end())));
    if (t.params.double_quant) {
        recs.push_back(TensorRecord::from_values("weight.nested_absmax", DType::kF32,
                                                 Shape{int64_t(t.nested_absmax.size())}, t.nested_absmax));
        recs.push_back(TensorRecord::from_values("weight.nested_quant_map", DType::kF32, Shape{256},
                                                 std::vector<float>(t.nested_code.begin(), t.nested_code.end())));
    }
    const std::string json = state_json(t);
    recs.push_back(TensorRecord::from_values(state_suffix(t.params.quant_type), DType::kU8, Shape{int64_t(json.size())},
                                             std::vector<uint8_t>(json.begin(), json.end())));
    return recs;
}

Result<Nf4Tensor> from_records(std::span<const TensorRecord> records) {
    const TensorRecord* state = nullptr;
    QuantType type = QuantType::kNf4;
    for (QuantType qt : {QuantType::kNf4, QuantType::kFp4}) {
        if (const TensorRecord* r = find_record(records, state_suffix(qt))) {
            if (state) return bad("both an nf4 and an fp4 quant state are present for one weight");
            state = r;
            type = qt;
        }
    }
    if (!state)
        return bad("no 'weight.quant_state.bitsandbytes__nf4' or '__fp4' tensor (not a bitsandbytes 4-bit weight)");
    if (state->dtype != DType::kU8) return bad(fmt::format("'{}' should be u8 JSON bytes", state->suffix));
    Nf4Tensor t;
    LOWBIT_TRY(parse_state(*state, type, t));
    const int64_t n = t.n_elems();
    const int64_t n_blocks = t.n_blocks();
    // bitsandbytes stores the packed weight as [(n + 1) / 2, 1] (Params4bit); a flat [(n + 1) / 2] is accepted too.
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* w, require_record(records, "weight", DType::kU8, (n + 1) / 2));
    if (w->shape != Shape{(n + 1) / 2, 1} && w->shape != Shape{(n + 1) / 2})
        return bad(fmt::format("'weight' should have shape [{}, 1] (packed 4-bit) but has {}", (n + 1) / 2,
                               w->shape.to_string()));
    t.packed = w->values<uint8_t>();
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* qmap,
                            require_record(records, "weight.quant_map", DType::kF32, Shape{16}));
    const auto code = qmap->values<float>();
    std::copy(code.begin(), code.end(), t.code.begin());
    if (!t.params.double_quant) {
        LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* a,
                                require_record(records, "weight.absmax", DType::kF32, Shape{n_blocks}));
        t.absmax = a->values<float>();
        return t;
    }
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* aq,
                            require_record(records, "weight.absmax", DType::kU8, Shape{n_blocks}));
    t.absmax_q = aq->values<uint8_t>();
    const int64_t n_nested = (n_blocks + kNestedBlockSize - 1) / kNestedBlockSize;
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* na,
                            require_record(records, "weight.nested_absmax", DType::kF32, Shape{n_nested}));
    t.nested_absmax = na->values<float>();
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* nq,
                            require_record(records, "weight.nested_quant_map", DType::kF32, Shape{256}));
    const auto ncode = nq->values<float>();
    std::copy(ncode.begin(), ncode.end(), t.nested_code.begin());
    return t;
}

} // namespace lowbit::scheme::nf4
