// SPDX-License-Identifier: MIT
// RTN rows of the algorithm table: scheme reference quantizers + error report.
#include "quantize/rtn/rtn.h"

#include "scheme/int_group/int_group.h"
#include "scheme/llm_int8/llm_int8.h"
#include "scheme/nf4/nf4.h"

#include <vector>

namespace lowbit::quantize::rtn {
namespace {

template <class T, class Dequant>
QuantizeOutput finish(const QuantizeRequest& req, const T& t, std::vector<scheme::TensorRecord> records, Dequant&& dq) {
    const int64_t n = req.n_rows * req.n_cols;
    std::vector<float> deq(static_cast<size_t>(n));
    dq(t, deq.data());
    QuantizeOutput out;
    out.report = measure_error(req.weights, deq.data(), n, scheme::records_bytes(records));
    out.records = std::move(records);
    return out;
}

Result<QuantizeOutput> quantize_4bit(const QuantizeRequest& req, scheme::nf4::QuantType type) {
    scheme::nf4::Nf4Params p;
    p.quant_type = type;
    p.block_size = req.params.block_size;
    p.double_quant = req.params.double_quant;
    LOWBIT_ASSIGN_OR_RETURN(auto t, scheme::nf4::quantize(req.weights, Shape{req.n_rows, req.n_cols}, p));
    return finish(req, t, scheme::nf4::to_records(t),
                  [](const scheme::nf4::Nf4Tensor& x, float* o) { scheme::nf4::dequantize(x, o); });
}

} // namespace

Result<QuantizeOutput> quantize_int_group(const QuantizeRequest& req) {
    scheme::int_group::IntGroupParams p{req.params.bits, req.params.group_size, req.params.symmetric};
    LOWBIT_ASSIGN_OR_RETURN(auto t, scheme::int_group::quantize_rtn(req.weights, req.n_rows, req.n_cols, p));
    return finish(req, t, scheme::int_group::to_records(t),
                  [](const scheme::int_group::IntGroupTensor& x, float* o) { scheme::int_group::dequantize(x, o); });
}

Result<QuantizeOutput> quantize_llm_int8(const QuantizeRequest& req) {
    LOWBIT_ASSIGN_OR_RETURN(auto t, scheme::llm_int8::quantize(req.weights, req.n_rows, req.n_cols));
    return finish(req, t, scheme::llm_int8::to_records(t),
                  [](const scheme::llm_int8::Int8Tensor& x, float* o) { scheme::llm_int8::dequantize(x, o); });
}

Result<QuantizeOutput> quantize_nf4(const QuantizeRequest& req) {
    return quantize_4bit(req, scheme::nf4::QuantType::kNf4);
}
Result<QuantizeOutput> quantize_fp4(const QuantizeRequest& req) {
    return quantize_4bit(req, scheme::nf4::QuantType::kFp4);
}

} // namespace lowbit::quantize::rtn
