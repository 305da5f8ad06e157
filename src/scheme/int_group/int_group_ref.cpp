// SPDX-License-Identifier: MIT
// Integer-group reference: bit-stream packing, RTN quantization, dequantization, records.
#include "core/finite.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "scheme/int_group/int_group.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace lowbit::scheme::int_group {
namespace {

Error usage(std::string msg) {
    return make_error(ErrorCode::kUsage, std::move(msg));
}

// Scale and zero of one group by GPTQ's min/max rule; the scale is returned already rounded to f16.
void group_params(const float* w, int64_t n, const IntGroupParams& p, uint16_t* scale_h, float* zero) {
    const float max_q = float((1 << p.bits) - 1);
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        lo = std::min(lo, w[i]);
        hi = std::max(hi, w[i]);
    }
    if (p.symmetric) {
        const float a = std::max(-lo, hi);
        lo = -a;
        hi = a;
    }
    if (lo == 0.0f && hi == 0.0f) {
        lo = -1.0f;
        hi = 1.0f;
    }
    *scale_h = f32_to_f16((hi - lo) / max_q);
    if (f16_to_f32(*scale_h) == 0.0f) *scale_h = 0x0001; // smallest f16 subnormal: never divide by zero
    const float s = f16_to_f32(*scale_h);
    *zero = p.symmetric ? float(1 << (p.bits - 1)) : std::clamp(std::nearbyint(-lo / s), 0.0f, max_q);
}

} // namespace

double max_rmse(int bits, bool symmetric) {
    // Measured on N(0,1) rows of 512, g = 128 (int_group_test), asym/sym: 8 bits 0.0059/0.0066, 4 bits
    // 0.100/0.112, 3 bits 0.216/0.239, 2 bits 0.506/0.555; the bounds leave 15% headroom.
    switch (bits) {
    case 8:
        return symmetric ? 0.0076 : 0.0068;
    case 4:
        return symmetric ? 0.128 : 0.115;
    case 3:
        return symmetric ? 0.275 : 0.25;
    default:
        return symmetric ? 0.64 : 0.58;
    }
}

Status validate(const IntGroupParams& p, int64_t n_rows, int64_t n_cols) {
    if (p.bits != 2 && p.bits != 3 && p.bits != 4 && p.bits != 8)
        return usage(fmt::format("integer group quantization supports 2, 3, 4 or 8 bits, got {}", p.bits));
    if (n_rows <= 0 || n_cols <= 0)
        return usage(fmt::format("integer group quantization needs a non-empty matrix, got [{}, {}]", n_rows, n_cols));
    if (p.group_size == -1) return ok_status();
    if (p.group_size <= 0 || p.group_size > n_cols || n_cols % p.group_size != 0)
        return usage(fmt::format("group size {} must divide the row length {} (or be -1 for per-channel)", p.group_size,
                                 n_cols));
    return ok_status();
}

void put_code(uint32_t* row, int64_t j, int bits, uint32_t q) {
    const int64_t bit = j * bits;
    const int64_t word = bit / 32;
    const int shift = int(bit % 32);
    row[word] |= q << shift;
    if (shift + bits > 32) row[word + 1] |= q >> (32 - shift);
}

uint32_t get_code(const uint32_t* row, int64_t j, int bits) {
    const int64_t bit = j * bits;
    const int64_t word = bit / 32;
    const int shift = int(bit % 32);
    uint32_t v = row[word] >> shift;
    if (shift + bits > 32) v |= row[word + 1] << (32 - shift);
    return v & ((1u << bits) - 1u);
}

uint32_t quantize_value(float w, float scale, float zero, int bits) {
    const float max_q = float((1 << bits) - 1);
    return uint32_t(std::clamp(std::nearbyint(w / scale) + zero, 0.0f, max_q));
}

Result<IntGroupTensor> quantize_rtn(const float* w, int64_t n_rows, int64_t n_cols, const IntGroupParams& p) {
    LOWBIT_TRY(validate(p, n_rows, n_cols));
    LOWBIT_TRY(check_finite_weights(w, n_rows * n_cols, n_cols, ""));
    IntGroupTensor t;
    t.params = p;
    t.n_rows = n_rows;
    t.n_cols = n_cols;
    const int64_t g = t.group_elems(), n_groups = t.n_groups(), words = t.words_per_row();
    t.qweight.assign(size_t(n_rows * words), 0u);
    t.scales.resize(size_t(n_rows * n_groups));
    if (!p.symmetric) t.zeros.resize(size_t(n_rows * n_groups));
    // Rows are independent (each starts at a word boundary): split them over the pool.
    ThreadPool::global().parallel_for(n_rows, [&](int64_t r0, int64_t r1, int) {
        for (int64_t r = r0; r < r1; ++r) {
            for (int64_t k = 0; k < n_groups; ++k) {
                const float* src = w + r * n_cols + k * g;
                uint16_t sh;
                float zero;
                group_params(src, g, p, &sh, &zero);
                t.scales[size_t(r * n_groups + k)] = sh;
                if (!p.symmetric) t.zeros[size_t(r * n_groups + k)] = uint8_t(zero);
                const float s = f16_to_f32(sh);
                for (int64_t j = 0; j < g; ++j)
                    put_code(&t.qweight[size_t(r * words)], k * g + j, p.bits, quantize_value(src[j], s, zero, p.bits));
            }
        }
    });
    return t;
}

void dequantize(const IntGroupTensor& t, float* out) {
    const int64_t g = t.group_elems(), n_groups = t.n_groups(), words = t.words_per_row();
    const float implicit_zero = float(1 << (t.params.bits - 1));
    for (int64_t r = 0; r < t.n_rows; ++r)
        for (int64_t c = 0; c < t.n_cols; ++c) {
            const size_t gi = size_t(r * n_groups + c / g);
            const float s = f16_to_f32(t.scales[gi]);
            const float z = t.params.symmetric ? implicit_zero : float(t.zeros[gi]);
            out[r * t.n_cols + c] = (float(get_code(&t.qweight[size_t(r * words)], c, t.params.bits)) - z) * s;
        }
}

std::vector<TensorRecord> to_records(const IntGroupTensor& t) {
    std::vector<TensorRecord> r;
    r.push_back(TensorRecord::from_values("qweight", DType::kI32, Shape{t.n_rows, t.words_per_row()}, t.qweight));
    r.push_back(TensorRecord::from_values("scales", DType::kF16, Shape{t.n_rows, t.n_groups()}, t.scales));
    if (!t.params.symmetric)
        r.push_back(TensorRecord::from_values("zeros", DType::kU8, Shape{t.n_rows, t.n_groups()}, t.zeros));
    return r;
}

Result<IntGroupTensor> from_records(std::span<const TensorRecord> records, const IntGroupParams& p, int64_t n_rows,
                                    int64_t n_cols) {
    LOWBIT_TRY(validate(p, n_rows, n_cols));
    IntGroupTensor t;
    t.params = p;
    t.n_rows = n_rows;
    t.n_cols = n_cols;
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* q,
                            require_record(records, "qweight", DType::kI32, Shape{n_rows, t.words_per_row()}));
    t.qweight = q->values<uint32_t>();
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* s,
                            require_record(records, "scales", DType::kF16, Shape{n_rows, t.n_groups()}));
    t.scales = s->values<uint16_t>();
    if (!p.symmetric) {
        LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* z,
                                require_record(records, "zeros", DType::kU8, Shape{n_rows, t.n_groups()}));
        t.zeros = z->values<uint8_t>();
    }
    return t;
}

} // namespace lowbit::scheme::int_group
