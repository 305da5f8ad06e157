// SPDX-License-Identifier: MIT
// Scalar (portable) dots of F16/BF16 weight rows with f32 activations, 8 partial sums (the AVX2 lane order).
#include "core/half.h"
#include "kernel/cpu/qdot/qdot.h"

namespace lowbit::kernel::cpu::qdot {
namespace {

template <float (*kToF32)(uint16_t)> float dot_row(int64_t k, const uint16_t* w, const float* x) {
    float acc[8] = {};
    int64_t i = 0;
    for (; i + 8 <= k; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += kToF32(load_u16(w, i + l)) * x[i + l]; // w: any alignment
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < k; ++i) s += kToF32(load_u16(w, i)) * x[i];
    return s;
}

template <float (*kToF32)(uint16_t)>
void dot(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out, int64_t out_stride) {
    for (int j = 0; j < n_x; ++j) {
        const auto* x = reinterpret_cast<const float*>(static_cast<const uint8_t*>(act) + j * act_stride);
        out[j * out_stride] = dot_row<kToF32>(k, static_cast<const uint16_t*>(w_row), x);
    }
}

} // namespace

DotFn find_dot_half_scalar(DType dtype) {
    if (dtype == DType::kF16) return dot<f16_to_f32>;
    if (dtype == DType::kBF16) return dot<bf16_to_f32>;
    return nullptr;
}

} // namespace lowbit::kernel::cpu::qdot
