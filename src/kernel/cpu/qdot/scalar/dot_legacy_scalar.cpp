// SPDX-License-Identifier: MIT
// Scalar (portable) dots of the legacy block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) with BlockQ8 activations:
// per block of 32 an exact integer sum Σ q_w * q_x, scaled by d_w * d_x in f32 (plus m_w * s_x for the types
// with a min). The SIMD levels compute the same expression; AVX2 Q4_0/Q8_0 in the same order (fma per block), so
// their results are the same bits as these.
#include "core/half.h"
#include "kernel/cpu/qdot/qdot.h"
#include "scheme/q4_0/q4_0.h"
#include "scheme/q4_1/q4_1.h"
#include "scheme/q5_0/q5_0.h"
#include "scheme/q5_1/q5_1.h"
#include "scheme/q8_0/q8_0.h"

#include <cmath>
#include <cstring>

namespace lowbit::kernel::cpu::qdot {
namespace {

// Integer levels of one weight block: q[j] for weights j = 0..31 (offset already subtracted for symmetric types).
void levels(const scheme::q4_0::Block& b, int* q) {
    for (int j = 0; j < 16; ++j) q[j] = (b.qs[j] & 0xF) - 8, q[j + 16] = (b.qs[j] >> 4) - 8;
}
void levels(const scheme::q4_1::Block& b, int* q) {
    for (int j = 0; j < 16; ++j) q[j] = b.qs[j] & 0xF, q[j + 16] = b.qs[j] >> 4;
}
uint32_t high_bits(const uint8_t* qh) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    return h;
}
void levels(const scheme::q5_0::Block& b, int* q) {
    const uint32_t h = high_bits(b.qh);
    for (int j = 0; j < 16; ++j) {
        q[j] = int((b.qs[j] & 0xF) | (((h >> j) & 1) << 4)) - 16;
        q[j + 16] = int((b.qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4)) - 16;
    }
}
void levels(const scheme::q5_1::Block& b, int* q) {
    const uint32_t h = high_bits(b.qh);
    for (int j = 0; j < 16; ++j) {
        q[j] = int((b.qs[j] & 0xF) | (((h >> j) & 1) << 4));
        q[j + 16] = int((b.qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4));
    }
}
void levels(const scheme::q8_0::Block& b, int* q) {
    for (int j = 0; j < 32; ++j) q[j] = b.qs[j];
}

template <class B> constexpr bool kHasMin = false;
template <> constexpr bool kHasMin<scheme::q4_1::Block> = true;
template <> constexpr bool kHasMin<scheme::q5_1::Block> = true;

template <class B> float dot_row(int64_t k, const B* w, const BlockQ8* x) {
    float acc = 0.0f;
    int q[32];
    for (int64_t i = 0; i < k / 32; ++i) {
        levels(w[i], q);
        int sum = 0;
        for (int j = 0; j < 32; ++j) sum += q[j] * x[i].qs[j];
        acc = std::fma(f16_to_f32(w[i].d) * x[i].d, float(sum), acc); // as the AVX2 Q4_0/Q8_0 lanes: same bits
        if constexpr (kHasMin<B>) acc += f16_to_f32(w[i].m) * x[i].s;
    }
    return acc;
}

template <class B>
void dot(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out, int64_t out_stride) {
    for (int j = 0; j < n_x; ++j) {
        const auto* x = reinterpret_cast<const BlockQ8*>(static_cast<const uint8_t*>(act) + j * act_stride);
        out[j * out_stride] = dot_row(k, static_cast<const B*>(w_row), x);
    }
}

} // namespace

DotFn find_dot_legacy_scalar(DType dtype) {
    switch (dtype) {
    case DType::kQ4_0:
        return dot<scheme::q4_0::Block>;
    case DType::kQ4_1:
        return dot<scheme::q4_1::Block>;
    case DType::kQ5_0:
        return dot<scheme::q5_0::Block>;
    case DType::kQ5_1:
        return dot<scheme::q5_1::Block>;
    case DType::kQ8_0:
        return dot<scheme::q8_0::Block>;
    default:
        return nullptr;
    }
}

} // namespace lowbit::kernel::cpu::qdot
