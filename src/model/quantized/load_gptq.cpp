// SPDX-License-Identifier: MIT
// Loader row for Hugging Face GPTQ checkpoints (quant_method "gptq"; checkpoint_format "gptq" = v1 with zero-1,
// "gptq_v2" = zeros as is): qweight/qzeros/scales/g_idx per Linear, dequantized to dense f32 at load.
// Shapes come from the records: qweight is [K * bits / 32, N] (int32), so N and K need no config lookup.
#include "model/quantized/load_rows.h"
#include "model/quantized/record_io.h"
#include "scheme/gptq/gptq_pack.h"

#include <fmt/format.h>

namespace lowbit::model::quantized {

bool matches_gptq(const QuantContext&) {
    return true;
}

Status load_gptq(const QuantContext& ctx, QuantizedStore& store) {
    const auto qc = quant_json(ctx);
    const auto bits_it = qc.find("bits");
    if (bits_it == qc.end() || !bits_it->is_number_integer())
        return make_error(ErrorCode::kBadInput, "config.json: quantization_config.bits must be an integer");
    const int bits = bits_it->get<int>();
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
        return make_error(ErrorCode::kUnsupported, fmt::format("GPTQ with {} bits is not supported (2/3/4/8)", bits));
    std::string fmt_name = "gptq";
    if (const auto f = qc.find("checkpoint_format"); f != qc.end() && f->is_string()) fmt_name = f->get<std::string>();
    LOWBIT_ASSIGN_OR_RETURN(scheme::gptq::GptqFormat format, scheme::gptq::parse_format(fmt_name));
    for (const auto& prefix : modules_with(store.base(), ".qweight")) {
        LOWBIT_ASSIGN_OR_RETURN(auto records, read_records(store.base(), prefix, [](const std::string& s) {
                                    return s == "qweight" || s == "qzeros" || s == "scales" || s == "g_idx";
                                }));
        const auto* qweight = scheme::find_record(records, "qweight");
        if (!qweight || qweight->shape.n_dims != 2)
            return make_error(ErrorCode::kBadInput,
                              fmt::format("tensor '{}.qweight' must be 2-D [K*bits/32, N]", prefix));
        const int64_t n_out = qweight->shape.dims[1];
        const int64_t n_in = qweight->shape.dims[0] * 32 / bits;
        auto lin = scheme::gptq::unpack(records, format, bits, n_out, n_in);
        if (!lin.ok()) return module_error(lin.error(), prefix);
        const std::vector<float> w = scheme::gptq::dequantize(*lin);
        hide_records(store, prefix, records);
        put_dense(store, prefix, n_out, n_in, w);
    }
    return ok_status();
}

} // namespace lowbit::model::quantized
