// SPDX-License-Identifier: MIT
// LLM.int8() row-wise absmax reference (bitsandbytes backends/default/ops.py int8_vectorwise_quant/dequant).
#include "core/finite.h"
#include "scheme/llm_int8/llm_int8.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace lowbit::scheme::llm_int8 {

// bitsandbytes dequantizes with the constant 7.874015718698502e-3 (= f32(1/127)).
static constexpr float kInv127 = 7.874015718698502e-3f;

float quantize_row(const float* w, int64_t n, int8_t* q) {
    float amax = 0.0f;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
    const float inv = 127.0f / amax; // torch: A * (127.0 / row_stats), an f32 multiply
    for (int64_t i = 0; i < n; ++i) q[i] = amax > 0.0f ? int8_t(std::nearbyint(w[i] * inv)) : int8_t(0);
    return amax;
}

Result<Int8Tensor> quantize(const float* w, int64_t n_rows, int64_t n_cols) {
    if (n_rows <= 0 || n_cols <= 0)
        return make_error(ErrorCode::kUsage,
                          fmt::format("LLM.int8 needs a non-empty matrix, got [{}, {}]", n_rows, n_cols));
    LOWBIT_TRY(check_finite_weights(w, n_rows * n_cols, n_cols, ""));
    Int8Tensor t;
    t.n_rows = n_rows;
    t.n_cols = n_cols;
    t.weight.resize(size_t(n_rows * n_cols));
    t.scb.resize(size_t(n_rows));
    for (int64_t r = 0; r < n_rows; ++r)
        t.scb[size_t(r)] = quantize_row(w + r * n_cols, n_cols, &t.weight[size_t(r * n_cols)]);
    return t;
}

void dequantize(const Int8Tensor& t, float* out) {
    for (int64_t r = 0; r < t.n_rows; ++r)
        for (int64_t c = 0; c < t.n_cols; ++c)
            out[r * t.n_cols + c] = float(t.weight[size_t(r * t.n_cols + c)]) * t.scb[size_t(r)] * kInv127;
}

std::vector<TensorRecord> to_records(const Int8Tensor& t) {
    std::vector<TensorRecord> r;
    r.push_back(TensorRecord::from_values("weight", DType::kI8, Shape{t.n_rows, t.n_cols}, t.weight));
    r.push_back(TensorRecord::from_values("SCB", DType::kF32, Shape{t.n_rows}, t.scb));
    r.push_back(TensorRecord::from_values("weight_format", DType::kU8, Shape(), std::vector<uint8_t>{0}));
    return r;
}

Result<Int8Tensor> from_records(std::span<const TensorRecord> records) {
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* w, require_record(records, "weight", DType::kI8, -1));
    if (w->shape.n_dims != 2 || w->shape.n_elems() == 0)
        return make_error(ErrorCode::kBadInput, fmt::format("LLM.int8 'weight' must be a non-empty 2-D matrix, got {}",
                                                            w->shape.to_string()));
    Int8Tensor t;
    t.n_rows = w->shape[0];
    t.n_cols = w->shape[1];
    t.weight = w->values<int8_t>();
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* scb, require_record(records, "SCB", DType::kF32, Shape{t.n_rows}));
    t.scb = scb->values<float>();
    if (const TensorRecord* f = find_record(records, "weight_format")) {
        if (f->dtype != DType::kU8 || f->bytes.size() != 1)
            return make_error(ErrorCode::kBadInput, "LLM.int8 'weight_format' must be one u8");
        if (f->bytes[0] != 0)
            return make_error(ErrorCode::kUnsupported,
                              fmt::format("LLM.int8 weight_format {} (only 0 = row-major is supported; col32/turing/"
                                          "ampere layouts are GPU-internal)",
                                          int(f->bytes[0])));
    }
    return t;
}

} // namespace lowbit::scheme::llm_int8
