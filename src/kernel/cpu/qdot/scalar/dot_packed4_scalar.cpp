// SPDX-License-Identifier: MIT
// Scalar (portable) dots of lowbit's repacked HF 4-bit layouts (scheme/packed4/packed4.h):
//   kI4Z with BlockQ8 activations: per block of 32, w = d (q - z), so Σ w x ≈ d·dx·Σ q·xq − d·z·(dx·Σ xq); the
//        integer sum is exact and x.s = dx·Σ xq comes with the activation block (the Q4_1 dot with m = −d·z).
//   kNF4x64 / kFP4x64 with f32 activations: w = code[q]·absmax formed exactly as dequantize_row does, then an
//        f32 dot (differs from ref/ by summation order only).
#include "core/half.h"
#include "kernel/cpu/qdot/qdot.h"
#include "scheme/nf4/nf4.h"
#include "scheme/packed4/packed4.h"

namespace lowbit::kernel::cpu::qdot {

using scheme::packed4::BlockF4x64;
using scheme::packed4::BlockI4Z;

// The 16-entry code table of kNF4x64 / kFP4x64 (shared with the AVX2 file, which includes no std headers' inlines).
const float* packed4_code_table(DType dtype) {
    return scheme::nf4::code_table(dtype == DType::kFP4x64 ? scheme::nf4::QuantType::kFp4
                                                           : scheme::nf4::QuantType::kNf4)
        .data();
}

namespace {

float dot_i4z_row(int64_t k, const BlockI4Z* w, const BlockQ8* x) {
    float acc = 0.0f;
    for (int64_t i = 0; i < k / 32; ++i) {
        int sum = 0;
        for (int j = 0; j < 16; ++j) sum += (w[i].qs[j] & 0xF) * x[i].qs[j] + (w[i].qs[j] >> 4) * x[i].qs[j + 16];
        const float d = f16_to_f32(w[i].d);
        acc += d * x[i].d * float(sum) - d * f16_to_f32(w[i].z) * x[i].s;
    }
    return acc;
}

void dot_i4z(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out,
             int64_t out_stride) {
    for (int j = 0; j < n_x; ++j) {
        const auto* x = reinterpret_cast<const BlockQ8*>(static_cast<const uint8_t*>(act) + j * act_stride);
        out[j * out_stride] = dot_i4z_row(k, static_cast<const BlockI4Z*>(w_row), x);
    }
}

float dot_f4_row(const float* code, int64_t k, const BlockF4x64* w, const float* x) {
    float acc = 0.0f;
    for (int64_t i = 0; i < k / 64; ++i, x += 64)
        for (int j = 0; j < 32; ++j)
            acc += code[w[i].qs[j] & 0xF] * w[i].absmax * x[j] + code[w[i].qs[j] >> 4] * w[i].absmax * x[j + 32];
    return acc;
}

template <DType kType>
void dot_f4(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out,
            int64_t out_stride) {
    const float* code = packed4_code_table(kType);
    for (int j = 0; j < n_x; ++j) {
        const auto* x = reinterpret_cast<const float*>(static_cast<const uint8_t*>(act) + j * act_stride);
        out[j * out_stride] = dot_f4_row(code, k, static_cast<const BlockF4x64*>(w_row), x);
    }
}

} // namespace

DotFn find_dot_packed4_scalar(DType dtype) {
    switch (dtype) {
    case DType::kI4Z:
        return dot_i4z;
    case DType::kNF4x64:
        return dot_f4<DType::kNF4x64>;
    case DType::kFP4x64:
        return dot_f4<DType::kFP4x64>;
    default:
        return nullptr;
    }
}

} // namespace lowbit::kernel::cpu::qdot
