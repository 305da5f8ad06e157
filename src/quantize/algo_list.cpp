// SPDX-License-Identifier: MIT
// The algorithm table (see algo_list.h).
#include "quantize/algo_list.h"

#include "quantize/hqq/hqq_algo.h"
#include "quantize/rtn/rtn.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace lowbit::quantize {
namespace {

constexpr AlgoRow kAlgos[] = {
    {"rtn", "int_group", "round-to-nearest integer groups (2/3/4/8 bits, f16 scales, optional u8 zeros)", false,
     rtn::quantize_int_group},
    {"int8", "llm_int8", "LLM.int8() row-wise absmax int8 + SCB (bitsandbytes Linear8bitLt)", false,
     rtn::quantize_llm_int8},
    {"nf4", "bnb_4bit", "bitsandbytes NF4 blocks (64 default) with double-quantized absmax", false, rtn::quantize_nf4},
    {"fp4", "bnb_4bit", "bitsandbytes FP4 (E2M1) blocks with double-quantized absmax", false, rtn::quantize_fp4},
    {"hqq", "hqq", "HQQ: float scale/zero per group, zero fitted by the lp (p=0.7) proximal solver", false,
     hqq::quantize_hqq_algo},
};

} // namespace

std::span<const AlgoRow> all_algos() {
    return kAlgos;
}

const AlgoRow* find_algo(std::string_view name) {
    for (const AlgoRow& r : kAlgos)
        if (r.name == name) return &r;
    return nullptr;
}

Status check_request(const AlgoRow& row, const QuantizeRequest& req) {
    if (!req.weights || req.n_rows <= 0 || req.n_cols <= 0)
        return make_error(ErrorCode::kUsage, fmt::format("{}: needs a non-empty weight matrix, got [{}, {}]", row.name,
                                                         req.n_rows, req.n_cols));
    if (row.needs_calib && !req.calib)
        return make_error(ErrorCode::kUsage, fmt::format("{} needs calibration statistics", row.name));
    return ok_status();
}

QuantizeReport measure_error(const float* w, const float* dequant, int64_t n, uint64_t record_bytes) {
    QuantizeReport r;
    double se = 0.0, sum = 0.0, sum2 = 0.0, mx = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const double d = double(w[i]) - double(dequant[i]);
        se += d * d;
        mx = std::max(mx, std::fabs(d));
        sum += double(w[i]);
        sum2 += double(w[i]) * double(w[i]);
    }
    const double nn = double(std::max<int64_t>(n, 1));
    const double var = std::max(0.0, sum2 / nn - (sum / nn) * (sum / nn));
    r.rmse = std::sqrt(se / nn);
    r.rel_rmse = var > 0.0 ? r.rmse / std::sqrt(var) : 0.0;
    r.max_abs_err = mx;
    r.bits_per_weight = double(record_bytes) * 8.0 / nn;
    return r;
}

} // namespace lowbit::quantize
