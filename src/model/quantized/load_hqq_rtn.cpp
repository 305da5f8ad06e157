// SPDX-License-Identifier: MIT
// hqq and lowbit_rtn rows of the loader table: both dequantized to dense f32 once at load.
#include "model/quantized/load_rows.h"
#include "model/quantized/record_io.h"
#include "model/quantized/repack.h"
#include "scheme/hqq/hqq.h"
#include "scheme/int_group/int_group.h"

#include <fmt/format.h>
#include <set>

namespace lowbit::model::quantized {
namespace {

Result<int64_t> int_field(const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer())
        return make_error(ErrorCode::kBadInput,
                          fmt::format("config.json: quantization_config.{} must be an integer", key));
    return it->get<int64_t>();
}

// Columns of an int_group weight: from the scales when grouped; per-channel (one group per row) picks the one
// model dimension whose packed word count matches (hidden, q_dim or n_ff are the only Linear inputs).
Result<int64_t> rtn_n_cols(const std::string& prefix, const scheme::TensorRecord& qweight,
                           const scheme::TensorRecord* scales, const scheme::int_group::IntGroupParams& p,
                           const format::ModelConfig& c) {
    if (p.group_size > 0) {
        if (!scales || scales->shape.n_dims != 2)
            return make_error(ErrorCode::kBadInput,
                              fmt::format("tensor '{}.scales' is missing or not 2-D [n_rows, n_groups]", prefix));
        return scales->shape.dims[1] * p.group_size;
    }
    const int64_t words = qweight.shape.dims[1];
    const int64_t head_dim = c.head_dim > 0 ? c.head_dim : (c.n_heads > 0 ? c.hidden_size / c.n_heads : 0);
    std::set<int64_t> fits;
    for (int64_t d : {c.hidden_size, c.intermediate_size, c.n_heads * head_dim})
        if (d > 0 && (d * p.bits + 31) / 32 == words) fits.insert(d);
    if (fits.size() != 1)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("tensor '{}.qweight': {} words per row match {} model dimensions; cannot tell "
                                      "the column count of a per-channel weight",
                                      prefix, words, fits.size()));
    return *fits.begin();
}

} // namespace

bool matches_hqq(const QuantContext&) {
    return true;
}

Status load_hqq(const QuantContext& ctx, QuantizedStore& store) {
    RepackTally tally;
    for (const auto& prefix : modules_with(store.base(), ".W_q")) {
        LOWBIT_ASSIGN_OR_RETURN(auto records,
                                read_records(store.base(), prefix, [](const std::string& s) { return s != "bias"; }));
        auto t = scheme::hqq::from_records(records);
        if (!t.ok()) return module_error(t.error(), prefix);
        if (t->shape.n_dims != 2)
            return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}.shape' is {}, expected a 2-D weight",
                                                                prefix, t->shape.to_string()));
        if (ctx.repack) {
            std::string why;
            if (auto packed = repack_hqq(*t, &why)) {
                hide_records(store, prefix, records);
                put_packed(store, prefix, std::move(*packed));
                ++tally.n_packed;
                continue;
            }
            tally.dense(prefix, why);
        }
        std::vector<float> w(size_t(t->shape.n_elems()));
        scheme::hqq::dequantize(*t, w.data());
        hide_records(store, prefix, records);
        put_dense(store, prefix, t->shape.dims[0], t->shape.dims[1], w);
    }
    if (ctx.repack) tally.log("hqq");
    return ok_status();
}

bool matches_rtn(const QuantContext&) {
    return true;
}

Status load_rtn(const QuantContext& ctx, QuantizedStore& store) {
    const auto qc = quant_json(ctx);
    scheme::int_group::IntGroupParams p;
    LOWBIT_ASSIGN_OR_RETURN(int64_t bits, int_field(qc, "bits"));
    LOWBIT_ASSIGN_OR_RETURN(p.group_size, int_field(qc, "group_size"));
    p.bits = int(bits);
    const auto sym = qc.find("sym");
    if (sym == qc.end() || !sym->is_boolean())
        return make_error(ErrorCode::kBadInput, "config.json: quantization_config.sym must be true or false");
    p.symmetric = sym->get<bool>();
    const auto layout = qc.find("layout");
    if (layout != qc.end() && *layout != "int_group_v1")
        return make_error(
            ErrorCode::kUnsupported,
            fmt::format("config.json: lowbit_rtn layout {} is not supported (int_group_v1)", layout->dump()));
    RepackTally tally;
    for (const auto& prefix : modules_with(store.base(), ".qweight")) {
        LOWBIT_ASSIGN_OR_RETURN(auto records, read_records(store.base(), prefix, [](const std::string& s) {
                                    return s == "qweight" || s == "scales" || s == "zeros";
                                }));
        const auto* qweight = scheme::find_record(records, "qweight");
        if (!qweight || qweight->shape.n_dims != 2)
            return make_error(ErrorCode::kBadInput,
                              fmt::format("tensor '{}.qweight' must be 2-D [n_rows, words_per_row]", prefix));
        LOWBIT_ASSIGN_OR_RETURN(int64_t n_cols,
                                rtn_n_cols(prefix, *qweight, scheme::find_record(records, "scales"), p, ctx.config));
        const int64_t n_rows = qweight->shape.dims[0];
        auto t = scheme::int_group::from_records(records, p, n_rows, n_cols);
        if (!t.ok()) return module_error(t.error(), prefix);
        if (ctx.repack) {
            std::string why;
            if (auto packed = repack_int_group(*t, &why)) {
                hide_records(store, prefix, records);
                put_packed(store, prefix, std::move(*packed));
                ++tally.n_packed;
                continue;
            }
            tally.dense(prefix, why);
        }
        std::vector<float> w(size_t(n_rows * n_cols));
        scheme::int_group::dequantize(*t, w.data());
        hide_records(store, prefix, records);
        put_dense(store, prefix, n_rows, n_cols, w);
    }
    if (ctx.repack) tally.log("lowbit_rtn");
    return ok_status();
}

} // namespace lowbit::model::quantized
