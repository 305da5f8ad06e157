// SPDX-License-Identifier: MIT
// Scalar (portable) dots of the k-quants (Q2_K … Q6_K) with BlockQ8K activations. Each weight super-block is
// decoded to integer levels q[256], group scales sc[g] and mins mn[g] (value = d * sc[g] * q - dmin * mn[g]);
// then, exactly in integers, sumi = Σ_g sc[g] Σ_{i∈g} q_i x_i and summ = Σ_g mn[g] Σ_{i∈g} x_i, and the block
// adds d_x * (d * sumi - dmin * summ) in f32.
#include "core/half.h"
#include "kernel/cpu/qdot/qdot.h"
#include "scheme/q2_k/q2_k.h"
#include "scheme/q3_k/q3_k.h"
#include "scheme/q4_k/q4_k.h"
#include "scheme/q5_k/q5_k.h"
#include "scheme/q6_k/q6_k.h"

namespace lowbit::kernel::cpu::qdot {
namespace {

struct Decoded {
    int q[256];
    int sc[16];
    int mn[16];
    int group = 16; // elements per scale: 16 or 32
    float d = 0, dmin = 0;
};

// Q4_K/Q5_K's 6-bit scale and min of group j (ggml's get_scale_min_k4).
void scale_min_k4(int j, const uint8_t* s, int* sc, int* mn) {
    if (j < 4) {
        *sc = s[j] & 63, *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Q2_K/Q3_K low bits: per 128 weights, byte l holds weights l + 32 * c at shift 2 * c.
int two_bits(const uint8_t* qs, int i) {
    const int half = i / 128, c = (i % 128) / 32, l = i % 32;
    return (qs[32 * half + l] >> (2 * c)) & 3;
}

void decode(const scheme::q2_k::Block& b, Decoded& o) {
    o.d = f16_to_f32(b.d), o.dmin = f16_to_f32(b.dmin);
    for (int g = 0; g < 16; ++g) o.sc[g] = b.scales[g] & 0xF, o.mn[g] = b.scales[g] >> 4;
    for (int i = 0; i < 256; ++i) o.q[i] = two_bits(b.qs, i);
}

void decode(const scheme::q3_k::Block& b, Decoded& o) {
    o.d = f16_to_f32(b.d);
    for (int g = 0; g < 16; ++g) {
        const int low = g < 8 ? b.scales[g] & 0xF : b.scales[g - 8] >> 4;
        const int high = (b.scales[8 + g % 4] >> (2 * (g / 4))) & 3;
        o.sc[g] = (low | (high << 4)) - 32, o.mn[g] = 0;
    }
    for (int i = 0; i < 256; ++i) o.q[i] = two_bits(b.qs, i) + 4 * ((b.hmask[i % 32] >> (i / 32)) & 1) - 4;
}

void decode(const scheme::q4_k::Block& b, Decoded& o) {
    o.d = f16_to_f32(b.d), o.dmin = f16_to_f32(b.dmin), o.group = 32;
    for (int g = 0; g < 8; ++g) scale_min_k4(g, b.scales, &o.sc[g], &o.mn[g]);
    for (int i = 0; i < 256; ++i) o.q[i] = (b.qs[32 * (i / 64) + i % 32] >> (4 * ((i / 32) % 2))) & 0xF;
}

void decode(const scheme::q5_k::Block& b, Decoded& o) {
    o.d = f16_to_f32(b.d), o.dmin = f16_to_f32(b.dmin), o.group = 32;
    for (int g = 0; g < 8; ++g) scale_min_k4(g, b.scales, &o.sc[g], &o.mn[g]);
    for (int i = 0; i < 256; ++i) {
        const int low = (b.qs[32 * (i / 64) + i % 32] >> (4 * ((i / 32) % 2))) & 0xF;
        o.q[i] = low | (((b.qh[i % 32] >> (i / 32)) & 1) << 4);
    }
}

void decode(const scheme::q6_k::Block& b, Decoded& o) {
    o.d = f16_to_f32(b.d);
    for (int g = 0; g < 16; ++g) o.sc[g] = b.scales[g], o.mn[g] = 0;
    for (int i = 0; i < 256; ++i) {
        const int half = i / 128, c = (i % 128) / 32, l = i % 32;
        const uint8_t* ql = b.ql + 64 * half;
        const int low = (ql[l + 32 * (c % 2)] >> (4 * (c / 2))) & 0xF;
        const int high = (b.qh[32 * half + l] >> (2 * c)) & 3;
        o.q[i] = (low | (high << 4)) - 32;
    }
}

float block_dot(const Decoded& w, const BlockQ8K& x) {
    int sumi = 0, summ = 0;
    for (int g = 0; g < 256 / w.group; ++g) {
        int sq = 0, sx = 0;
        for (int i = g * w.group; i < (g + 1) * w.group; ++i) sq += w.q[i] * x.qs[i], sx += x.qs[i];
        sumi += w.sc[g] * sq, summ += w.mn[g] * sx;
    }
    return x.d * (w.d * float(sumi) - w.dmin * float(summ));
}

template <class B>
void dot(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out, int64_t out_stride) {
    const auto* w = static_cast<const B*>(w_row);
    float acc[kMaxX] = {};
    Decoded dec;
    for (int64_t i = 0; i < k / 256; ++i) {
        decode(w[i], dec);
        for (int j = 0; j < n_x; ++j) {
            const auto* x = reinterpret_cast<const BlockQ8K*>(static_cast<const uint8_t*>(act) + j * act_stride);
            acc[j] += block_dot(dec, x[i]);
        }
    }
    for (int j = 0; j < n_x; ++j) out[j * out_stride] = acc[j];
}

} // namespace

DotFn find_dot_kquant_scalar(DType dtype) {
    switch (dtype) {
    case DType::kQ2_K:
        return dot<scheme::q2_k::Block>;
    case DType::kQ3_K:
        return dot<scheme::q3_k::Block>;
    case DType::kQ4_K:
        return dot<scheme::q4_k::Block>;
    case DType::kQ5_K:
        return dot<scheme::q5_k::Block>;
    case DType::kQ6_K:
        return dot<scheme::q6_k::Block>;
    default:
        return nullptr;
    }
}

} // namespace lowbit::kernel::cpu::qdot
