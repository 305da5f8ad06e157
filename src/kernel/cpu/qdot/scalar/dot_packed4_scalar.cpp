// SPDX-License-Identifier: MIT
// Scalar (portable) dots of lowbit's repacked HF 4-bit layouts (scheme/packed4/packed4.h):
//   kI4Z with BlockQ8 activations: per block of 32, w = d (q - z), so Σ w x ≈ d·dx·Σ q·xq − d·z·(dx·Σ xq); the
//        integer sum is exact and x.s = dx·Σ xq comes with the activation block (the Q4_1 dot with m = −d·z).
//   kI8Z with BlockQ8 activations: the same with a code byte (0..255) per weight; |Σ q·xq| < 2^24.
//   kNF4x64 / kFP4x64 with BlockQ8 activations: the 16 codes (floats in [-1, 1]) as int16 c16 = rint(code·32767)
//        (packed4_code16_table), so per block of 32 Σ w x ≈ absmax·dx/32767 · Σ c16[q]·xq with an exact integer sum.
//        Besides the 8-bit rounding of x (as for every qdot type) this rounds each code by at most 2^-16 absolute
//        (|w| error ≤ absmax/65534, 1.5e-5 of the block's largest weight): integer madds instead of a float table
//        lookup per weight, the Q4_0 speed for NF4.
// Per block the float steps are plain products and sums in a fixed order (no fma: this file has no FMA flag on
// x86-64), which the AVX2 8-row dots repeat in each row's lane (their file is compiled with -ffp-contract=off), so
// the two levels give the same bits (qdot_test checks).
#include "core/half.h"
#include "kernel/cpu/qdot/qdot.h"
#include "scheme/nf4/nf4.h"
#include "scheme/packed4/packed4.h"

#include <cmath>

namespace lowbit::kernel::cpu::qdot {

using scheme::packed4::BlockF4x64;
using scheme::packed4::BlockI4Z;
using scheme::packed4::BlockI8Z;

// The 16-entry code table of kNF4x64 / kFP4x64 (shared with the AVX2 file, which includes no std headers' inlines).
const float* packed4_code_table(DType dtype) {
    return scheme::nf4::code_table(dtype == DType::kFP4x64 ? scheme::nf4::QuantType::kFp4
                                                           : scheme::nf4::QuantType::kNf4)
        .data();
}

const int16_t* packed4_code16_table(DType dtype) {
    struct Tables {
        int16_t nf4[16], fp4[16];
        Tables() {
            for (int i = 0; i < 16; ++i) {
                nf4[i] = int16_t(std::lrint(double(packed4_code_table(DType::kNF4x64)[i]) * kCode16Scale));
                fp4[i] = int16_t(std::lrint(double(packed4_code_table(DType::kFP4x64)[i]) * kCode16Scale));
            }
        }
    };
    static const Tables t;
    return dtype == DType::kFP4x64 ? t.fp4 : t.nf4;
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

// kI8Z: as kI4Z with a code byte per weight.
float dot_i8z_row(int64_t k, const BlockI8Z* w, const BlockQ8* x) {
    float acc = 0.0f;
    for (int64_t i = 0; i < k / 32; ++i) {
        int sum = 0;
        for (int j = 0; j < 32; ++j) sum += w[i].qs[j] * x[i].qs[j];
        const float d = f16_to_f32(w[i].d);
        acc += d * x[i].d * float(sum) - d * f16_to_f32(w[i].z) * x[i].s;
    }
    return acc;
}

void dot_i8z(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out,
             int64_t out_stride) {
    for (int j = 0; j < n_x; ++j) {
        const auto* x = reinterpret_cast<const BlockQ8*>(static_cast<const uint8_t*>(act) + j * act_stride);
        out[j * out_stride] = dot_i8z_row(k, static_cast<const BlockI8Z*>(w_row), x);
    }
}

// Weight block i (64) against activation blocks 2i (its low nibbles) and 2i + 1 (its high nibbles).
float dot_f4_row(const int16_t* c16, int64_t k, const BlockF4x64* w, const BlockQ8* x) {
    float acc = 0.0f;
    for (int64_t i = 0; i < k / 64; ++i) {
        const float dw = w[i].absmax * kInvCode16Scale;
        for (int h = 0; h < 2; ++h) {
            int sum = 0;
            for (int j = 0; j < 32; ++j) sum += c16[(w[i].qs[j] >> (4 * h)) & 0xF] * x[2 * i + h].qs[j];
            acc += dw * x[2 * i + h].d * float(sum);
        }
    }
    return acc;
}

template <DType kType>
void dot_f4(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out,
            int64_t out_stride) {
    const int16_t* c16 = packed4_code16_table(kType);
    for (int j = 0; j < n_x; ++j) {
        const auto* x = reinterpret_cast<const BlockQ8*>(static_cast<const uint8_t*>(act) + j * act_stride);
        out[j * out_stride] = dot_f4_row(c16, k, static_cast<const BlockF4x64*>(w_row), x);
    }
}

} // namespace

DotFn find_dot_packed4_scalar(DType dtype) {
    switch (dtype) {
    case DType::kI4Z:
        return dot_i4z;
    case DType::kI8Z:
        return dot_i8z;
    case DType::kNF4x64:
        return dot_f4<DType::kNF4x64>;
    case DType::kFP4x64:
        return dot_f4<DType::kFP4x64>;
    default:
        return nullptr;
    }
}

} // namespace lowbit::kernel::cpu::qdot
