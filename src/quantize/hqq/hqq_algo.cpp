// SPDX-License-Identifier: MIT
// The "hqq" row of the algorithm table: solver + records + error report.
#include "quantize/hqq/hqq_algo.h"

#include "quantize/hqq/hqq_solver.h"

namespace lowbit::quantize::hqq {

Result<QuantizeOutput> quantize_hqq_algo(const QuantizeRequest& req) {
    scheme::hqq::HqqParams p;
    p.nbits = req.params.bits;
    p.group_size = req.params.group_size;
    p.axis = req.params.axis;
    HqqOptions o;
    o.optimize = req.params.optimize;
    o.round_zero = req.params.round_zero;
    o.kappa = req.params.kappa;
    const Shape shape{req.n_rows, req.n_cols};
    LOWBIT_ASSIGN_OR_RETURN(HqqSolveResult r, quantize_hqq(req.weights, shape, p, o, req.pool));
    std::vector<float> deq(static_cast<size_t>(shape.n_elems()));
    scheme::hqq::dequantize(r.tensor, deq.data());
    QuantizeOutput out;
    out.records = scheme::hqq::to_records(r.tensor, o.optimize, r.round_zero);
    out.report = measure_error(req.weights, deq.data(), shape.n_elems(), scheme::records_bytes(out.records));
    out.report.n_iters = int(r.errors.size());
    return out;
}

} // namespace lowbit::quantize::hqq
