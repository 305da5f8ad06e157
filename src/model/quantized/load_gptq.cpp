// SPDX-License-Identifier: MIT
// Loader row for Hugging Face GPTQ checkpoints (quant_method "gptq"; checkpoint_format "gptq" = v1 with zero-1,
// "gptq_v2" = zeros as is): qweight/qzeros/scales/g_idx per Linear, dequantized to dense f32 at load.
// Before anything is unpacked, every module's shapes are checked against the config's bits (qweight
// [K*b/32, N], qzeros [G, N*b/32], scales [G, N], g_idx [K], G = ceil(K/g)), and the zero-point convention is
// read from the data (gptq_zero_convention.h's rules) and compared with checkpoint_format: a contradiction is
// refused, since reading v1 as v2 (or back) shifts every weight by one scale step without any other symptom.
#include "core/log.h"
#include "model/quantized/gptq_zero_convention.h"
#include "model/quantized/load_rows.h"
#include "model/quantized/record_io.h"
#include "model/quantized/repack.h"
#include "scheme/gptq/gptq_pack.h"

#include <fmt/format.h>

namespace lowbit::model::quantized {
namespace {

using scheme::gptq::GptqFormat;

struct GptqSettings {
    int bits = 4;
    int64_t group_size = 128; // -1: one group per row
    std::string format_name;  // checkpoint_format as written ("" = legacy, read as v1)
    GptqFormat format = GptqFormat::kV1;
};

Result<GptqSettings> parse_settings(const nlohmann::json& qc) {
    GptqSettings s;
    const auto bits_it = qc.find("bits");
    if (bits_it == qc.end() || !bits_it->is_number_integer())
        return make_error(ErrorCode::kBadInput, "config.json: quantization_config.bits must be an integer");
    s.bits = bits_it->get<int>();
    if (s.bits != 2 && s.bits != 3 && s.bits != 4 && s.bits != 8)
        return make_error(ErrorCode::kUnsupported, fmt::format("GPTQ with {} bits is not supported (2/3/4/8)", s.bits));
    if (const auto g = qc.find("group_size"); g != qc.end() && !g->is_null()) {
        if (!g->is_number_integer() || (g->get<int64_t>() <= 0 && g->get<int64_t>() != -1))
            return make_error(ErrorCode::kBadInput,
                              "config.json: quantization_config.group_size must be -1 or a positive integer, got " +
                                  g->dump());
        s.group_size = g->get<int64_t>();
    }
    if (const auto m = qc.find("is_marlin_format"); m != qc.end() && m->is_boolean() && m->get<bool>())
        return make_error(ErrorCode::kUnsupported, "GPTQ checkpoint with is_marlin_format true is not supported "
                                                   "(Marlin is a repack of the 'gptq' layout)");
    if (const auto f = qc.find("checkpoint_format"); f != qc.end() && f->is_string())
        s.format_name = f->get<std::string>();
    LOWBIT_ASSIGN_OR_RETURN(s.format, scheme::gptq::parse_format(s.format_name));
    return s;
}

struct ModuleShape {
    int64_t n_in = 0, n_out = 0, n_groups = 0; // K, N, G
};

// The file tensor `name`, checked to have `dtype` and `n_dims` dims (kBadInput naming it and the expected layout).
Result<const format::TensorInfo*> tensor_of(const format::TensorStore& s, const std::string& name, DType dtype,
                                            int n_dims, const char* layout) {
    const format::TensorInfo* t = s.find(name);
    if (!t) return make_error(ErrorCode::kBadInput, fmt::format("GPTQ tensor '{}' is missing", name));
    if (t->dtype != dtype || t->shape.n_dims != n_dims)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("GPTQ tensor '{}' must be {} {} but is {} {}", name, dtype_name(dtype), layout,
                                      dtype_name(t->dtype), t->shape.to_string()));
    return t;
}

// Shapes of module p from the tensor table alone, checked against the config's bits and group size (the
// "bits per weight" check: qweight rows, qzeros words and g_idx length must agree on b).
Result<ModuleShape> check_shapes(const format::TensorStore& s, const std::string& p, const GptqSettings& st) {
    const int b = st.bits;
    LOWBIT_ASSIGN_OR_RETURN(auto qw, tensor_of(s, p + ".qweight", DType::kI32, 2, "[K*bits/32, N]"));
    LOWBIT_ASSIGN_OR_RETURN(auto sc, tensor_of(s, p + ".scales", DType::kF16, 2, "[n_groups, N]"));
    LOWBIT_ASSIGN_OR_RETURN(auto qz, tensor_of(s, p + ".qzeros", DType::kI32, 2, "[n_groups, N*bits/32]"));
    LOWBIT_ASSIGN_OR_RETURN(auto gi, tensor_of(s, p + ".g_idx", DType::kI32, 1, "[K]"));
    ModuleShape m{gi->shape[0], qw->shape[1], sc->shape[0]};
    const int64_t rows = qw->shape[0];
    if (rows * 32 != m.n_in * b)
        return make_error(
            ErrorCode::kBadInput,
            fmt::format("GPTQ tensor '{}.qweight' has {} rows but '{}.g_idx' gives K = {} input channels, "
                        "which need K*bits/32 = {} rows at the config's {} bits (the data looks like "
                        "{:.3g}-bit; is quantization_config.bits right?)",
                        p, rows, p, m.n_in, double(m.n_in * b) / 32.0, b,
                        m.n_in ? double(rows) * 32.0 / double(m.n_in) : 0.0));
    if (sc->shape[1] != m.n_out || m.n_groups < 1)
        return make_error(ErrorCode::kBadInput, fmt::format("GPTQ tensor '{}.scales' is {} but '{}.qweight' has N = {} "
                                                            "outputs (expected [n_groups, {}])",
                                                            p, sc->shape.to_string(), p, m.n_out, m.n_out));
    if (qz->shape[0] != m.n_groups || qz->shape[1] * 32 != m.n_out * b)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("GPTQ tensor '{}.qzeros' is {} but {} groups of N = {} outputs at {} bits need "
                                      "[{}, {:.3g}] (the data looks like {:.3g}-bit)",
                                      p, qz->shape.to_string(), m.n_groups, m.n_out, b, m.n_groups,
                                      double(m.n_out * b) / 32.0, double(qz->shape[1]) * 32.0 / double(m.n_out)));
    const int64_t want_groups = st.group_size > 0 ? (m.n_in + st.group_size - 1) / st.group_size : 1;
    if (m.n_groups != want_groups)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("GPTQ tensor '{}.scales' has {} groups but K = {} with the config's group_size "
                                      "{} needs {}",
                                      p, m.n_groups, m.n_in, st.group_size, want_groups));
    return m;
}

// Stored (packed, raw) zero points of every module: histogram over [0, 2^b).
Result<std::vector<int64_t>> stored_zero_histogram(const format::TensorStore& s, const std::vector<std::string>& mods,
                                                   const std::vector<ModuleShape>& shapes, int b) {
    std::vector<int64_t> hist(size_t(1) << b, 0);
    for (size_t i = 0; i < mods.size(); ++i) {
        LOWBIT_ASSIGN_OR_RETURN(auto recs,
                                read_records(s, mods[i], [](const std::string& x) { return x == "qzeros"; }));
        const auto words = recs.at(0).values<uint32_t>();
        const int64_t per_row = shapes[i].n_out * b / 32;
        for (int64_t g = 0; g < shapes[i].n_groups; ++g) {
            const auto row = std::span<const uint32_t>(words).subspan(size_t(g * per_row), size_t(per_row));
            for (uint32_t z : scheme::gptq::unpack_bits(row, b, shapes[i].n_out)) hist[z] += 1;
        }
    }
    return hist;
}

} // namespace

bool matches_gptq(const QuantContext&) {
    return true;
}

Status load_gptq(const QuantContext& ctx, QuantizedStore& store) {
    LOWBIT_ASSIGN_OR_RETURN(const GptqSettings st, parse_settings(quant_json(ctx)));
    const auto modules = modules_with(store.base(), ".qweight");
    std::vector<ModuleShape> shapes;
    for (const auto& prefix : modules) {
        LOWBIT_ASSIGN_OR_RETURN(auto m, check_shapes(store.base(), prefix, st));
        shapes.push_back(m);
    }
    LOWBIT_ASSIGN_OR_RETURN(auto hist, stored_zero_histogram(store.base(), modules, shapes, st.bits));
    const ZeroConventionVerdict verdict = judge_zero_convention(hist, st.bits);
    const char* config_name = scheme::gptq::format_name(st.format);
    if (verdict.format && *verdict.format != st.format) {
        const char* data_name = scheme::gptq::format_name(*verdict.format);
        return make_error(ErrorCode::kBadInput,
                          fmt::format("GPTQ zero points contradict config.json: checkpoint_format is '{}'{} ({}) but "
                                      "the data says '{}': {}. If the data is right, set checkpoint_format to '{}' in "
                                      "quantization_config (and quantize_config.json)",
                                      st.format_name.empty() ? "gptq" : st.format_name,
                                      st.format_name.empty() ? " (not set: legacy default)" : "",
                                      st.format == GptqFormat::kV1 ? "stores zero - 1" : "stores the zero as is",
                                      data_name, verdict.evidence, data_name));
    }
    log_info("gptq: checkpoint_format '{}'; zero points {} ({})", config_name,
             verdict.format ? "agree" : "are inconclusive, trusting the config", verdict.evidence);
    RepackTally tally;
    for (size_t i = 0; i < modules.size(); ++i) {
        const auto& prefix = modules[i];
        LOWBIT_ASSIGN_OR_RETURN(auto records, read_records(store.base(), prefix, [](const std::string& s) {
                                    return s == "qweight" || s == "qzeros" || s == "scales" || s == "g_idx";
                                }));
        auto lin = scheme::gptq::unpack(records, st.format, st.bits, shapes[i].n_out, shapes[i].n_in);
        if (!lin.ok()) return module_error(lin.error(), prefix);
        if (ctx.repack) {
            std::string why;
            if (auto packed = repack_gptq(*lin, &why)) {
                hide_records(store, prefix, records);
                put_packed(store, prefix, std::move(*packed));
                ++tally.n_packed;
                continue;
            }
            tally.dense(prefix, why);
        }
        const std::vector<float> w = scheme::gptq::dequantize(*lin);
        hide_records(store, prefix, records);
        put_dense(store, prefix, shapes[i].n_out, shapes[i].n_in, w);
    }
    if (ctx.repack) tally.log("gptq");
    return ok_status();
}

} // namespace lowbit::model::quantized
