// SPDX-License-Identifier: MIT
// Device dots of weight sub-blocks (32 elements) with 8-bit activations (included by .cu files only): the CUDA
// engine's decode GEMV for the types below quantizes x once per matmul to blocks of 32 int8 with an f32 scale — the
// CPU's quantizer exactly (kernel/cpu/qdot: d = amax / 127, q = round-half-even(x / d)) — and multiplies integer
// parts with dp4a, four products per instruction, instead of converting every weight to float.
// Per activation block the GEMV reads xq[32] and ds = {d, Σ q} (the sum as an exact float), and per weight
// sub-block a `Raw` loaded by Q8<…>::load (16-byte loads from the layouts of gpu_repack.h / the file's q4_k, q5_k
// blocks). dot() returns Σ w·x̂ over the sub-block with x̂ = d·q: for q8_0, q4_0 and kI4Z the same expression as the
// CPU's scalar qdot (dw·dx·Σ qw·qx, − d·z·s for kI4Z), so the two differ only in the order of float additions; the
// k-quants use the sub-block's scale and min (the CPU uses 256-element activation blocks for them).
#pragma once

#include "kernel/cuda/engine/gpu_quant.cuh"

#include <cstdint>

namespace lowbit::kernel::cuda::engine {

// Σ over the 32 nibbles of 16 quant bytes (byte j: low nibble = element j, high = element j + 16) times x.
__device__ __forceinline__ int dot_nibbles32(const uint32_t (&q)[4], const int (&x)[8]) {
    int s = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        s = __dp4a(int(q[i] & 0x0F0F0F0Fu), x[i], s);
        s = __dp4a(int((q[i] >> 4) & 0x0F0F0F0Fu), x[i + 4], s);
    }
    return s;
}

__device__ __forceinline__ void ldg_words(const uint8_t* p, uint32_t* u) {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
    u[0] = v.x, u[1] = v.y, u[2] = v.z, u[3] = v.w;
}

// q8_0, repacked: [qs: 32 bytes per block][d: f16 per block].
struct Q8Q8_0 {
    static constexpr int kUnroll = 4;
    static constexpr bool kCpuOrder = true;
    struct Raw {
        uint32_t q[8];
        float d;
    };
    __device__ static Raw load(const uint8_t* row, int64_t sb, int64_t n_sub) {
        Raw r;
        ldg_words(row + 32 * sb, r.q);
        ldg_words(row + 32 * sb + 16, r.q + 4);
        r.d = __half2float(__ldg(reinterpret_cast<const __half*>(row + 32 * n_sub) + sb));
        return r;
    }
    __device__ static int isum(const Raw& w, const int (&x)[8], float2) {
        int s = 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) s = __dp4a(int(w.q[i]), x[i], s);
        return s;
    }
    __device__ static float dot(const Raw& w, const int (&x)[8], float2 ds) {
        return w.d * ds.x * float(isum(w, x, ds));
    }
};

// q4_0, repacked: [qs: 16 bytes per block][d: f16 per block]; w = d·(q − 8).
struct Q8Q4_0 {
    static constexpr int kUnroll = 4;
    static constexpr bool kCpuOrder = true;
    struct Raw {
        uint32_t q[4];
        float d;
    };
    __device__ static Raw load(const uint8_t* row, int64_t sb, int64_t n_sub) {
        Raw r;
        ldg_words(row + 16 * sb, r.q);
        r.d = __half2float(__ldg(reinterpret_cast<const __half*>(row + 16 * n_sub) + sb));
        return r;
    }
    __device__ static int isum(const Raw& w, const int (&x)[8], float2 ds) {
        return dot_nibbles32(w.q, x) - 8 * int(ds.y);
    }
    __device__ static float dot(const Raw& w, const int (&x)[8], float2 ds) {
        return w.d * ds.x * float(isum(w, x, ds));
    }
};

// kI4Z, repacked: [qs: 16 bytes per block][(d, z): two f16 per block, or per group of 2^kGroupShift blocks];
// w = d·(q − z).
template <int kGroupShift> struct Q8I4ZG {
    static constexpr int kUnroll = 4;
    static constexpr bool kCpuOrder = false;
    struct Raw {
        uint32_t q[4];
        float d, z;
    };
    __device__ static Raw load(const uint8_t* row, int64_t sb, int64_t n_sub) {
        Raw r;
        ldg_words(row + 16 * sb, r.q);
        const float2 dz =
            __half22float2(__ldg(reinterpret_cast<const __half2*>(row + 16 * n_sub) + (sb >> kGroupShift)));
        r.d = dz.x, r.z = dz.y;
        return r;
    }
    __device__ static float dot(const Raw& w, const int (&x)[8], float2 ds) {
        const int s = dot_nibbles32(w.q, x);
        return w.d * ds.x * float(s) - w.d * w.z * (ds.x * ds.y);
    }
};

// The NF4 / FP4 codes as int16 c16 = rint(code · 32767) (kernel/cpu/qdot's packed4_code16_table), split into
// bytes for byte-permute lookups: [table][0..3] the low bytes (unsigned) of codes 0..15, [4..7] the high bytes
// (signed), c16 = 256 · hi + lo. Uploaded by prepare_decoder; every lane reads the same words (uniform constant loads).
__constant__ uint32_t c_f4_code16[2][8];

// dp4a of four unsigned bytes with four signed bytes.
__device__ __forceinline__ int dp4a_us(uint32_t a, int b, int c) {
    int d;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

// kNF4x64 / kFP4x64 (device layout of gpu_quant.cuh: 16 sequential-nibble bytes per sub-block): Σ c16[q]·qx exactly,
// as the CPU's dot (integer madds on int16 codes; the codes rounded by at most 2^-16 of the block's absmax), times
// absmax / 32767 · dx. Four nibbles of a 16-bit slice are byte_perm selectors (bits 0-2) into the 8 low and the 8
// high table entries of each byte plane; bit 3 of each then picks between the two results (a third byte_perm).
template <int kTableId> struct Q8F4x64 {
    static constexpr int kUnroll = 4;
    static constexpr bool kCpuOrder = false;
    struct Raw {
        uint32_t q[4];
        float scale;
    };
    __device__ static Raw load(const uint8_t* row, int64_t sb, int64_t n_sub) {
        Raw r;
        ldg_words(row + 16 * sb, r.q);
        r.scale = __ldg(reinterpret_cast<const float*>(row + 16 * n_sub) + (sb >> 1)) * (1.0f / 32767.0f);
        return r;
    }
    __device__ static float dot(const Raw& w, const int (&x)[8], float2 ds) {
        const uint32_t* t = c_f4_code16[kTableId];
        int s_hi = 0, s_lo = 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t sel = (i & 1) ? w.q[i / 2] >> 16 : w.q[i / 2];
            const uint32_t pick = 0x3210u | ((sel >> 1) & 0x4444u); // nibble k: k, or 4 + k when bit 3 is set
            const uint32_t lo = __byte_perm(__byte_perm(t[0], t[1], sel), __byte_perm(t[2], t[3], sel), pick);
            const uint32_t hi = __byte_perm(__byte_perm(t[4], t[5], sel), __byte_perm(t[6], t[7], sel), pick);
            s_hi = __dp4a(int(hi), x[i], s_hi);
            s_lo = dp4a_us(lo, x[i], s_lo);
        }
        return w.scale * ds.x * float(256 * s_hi + s_lo);
    }
};

// The head of a q4_k / q5_k super-block (d, dmin, scales[12]) -> the scale and min of sub-block j, times d / dmin.
__device__ __forceinline__ void kquant_scale_min(const uint32_t (&head)[4], int j, float& d1, float& m1) {
    uint8_t h[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) h[i] = uint8_t(head[i / 4] >> (8 * (i % 4)));
    float sc, mn;
    scale_min_k4(j, h, sc, mn);
    const float2 dm = __half22float2(*reinterpret_cast<const __half2*>(&head[0]));
    d1 = dm.x * sc, m1 = dm.y * mn;
}

// Σ w·x̂ of k-quant sub-block `sub` from its integer sum s = Σ q·qx: d·sc·dx·s − dmin·m·(dx·Σ qx).
__device__ __forceinline__ float kquant_sub_dot(const uint32_t (&head)[4], int sub, int s, float2 ds) {
    float d1, m1;
    kquant_scale_min(head, sub, d1, m1);
    return d1 * ds.x * float(s) - m1 * (ds.x * ds.y);
}

// q4_k, the file's 144-byte blocks; sub-block s of a block: nibbles (s odd: high) of qs[32·(s/2) .. +32).
struct Q8Q4_K {
    static constexpr int kUnroll = 2;
    static constexpr bool kCpuOrder = false;
    struct Raw {
        uint32_t head[4], q[8];
        int sub;
    };
    __device__ static Raw load(const uint8_t* row, int64_t sb, int64_t) {
        Raw r;
        const uint8_t* b = row + (sb >> 3) * 144;
        r.sub = int(sb & 7);
        ldg_words(b, r.head);
        ldg_words(b + 16 + 32 * (r.sub >> 1), r.q);
        ldg_words(b + 32 + 32 * (r.sub >> 1), r.q + 4);
        return r;
    }
    __device__ static float dot(const Raw& w, const int (&x)[8], float2 ds) {
        const int shift = (w.sub & 1) * 4;
        int s = 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) s = __dp4a(int((w.q[i] >> shift) & 0x0F0F0F0Fu), x[i], s);
        return kquant_sub_dot(w.head, w.sub, s, ds);
    }
};

// q5_k, the file's 176-byte blocks: head, qh[32] (bit s of byte l: the fifth bit of element l of sub-block s),
// qs[128] as in q4_k.
struct Q8Q5_K {
    static constexpr int kUnroll = 2;
    static constexpr bool kCpuOrder = false;
    struct Raw {
        uint32_t head[4], qh[8], q[8];
        int sub;
    };
    __device__ static Raw load(const uint8_t* row, int64_t sb, int64_t) {
        Raw r;
        const uint8_t* b = row + (sb >> 3) * 176;
        r.sub = int(sb & 7);
        ldg_words(b, r.head);
        ldg_words(b + 16, r.qh);
        ldg_words(b + 32, r.qh + 4);
        ldg_words(b + 48 + 32 * (r.sub >> 1), r.q);
        ldg_words(b + 64 + 32 * (r.sub >> 1), r.q + 4);
        return r;
    }
    __device__ static float dot(const Raw& w, const int (&x)[8], float2 ds) {
        const int shift = (w.sub & 1) * 4;
        int s = 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t q = ((w.q[i] >> shift) & 0x0F0F0F0Fu) | (((w.qh[i] >> w.sub) & 0x01010101u) << 4);
            s = __dp4a(int(q), x[i], s);
        }
        return kquant_sub_dot(w.head, w.sub, s, ds);
    }
};

// q6_k, repacked: per row [ql[128], qh[64], scales[16]: 208 bytes per block][d: f16 per block]; w = d·sc·(q − 32)
// with one int8 scale per 16 elements.
struct Q8Q6_K {
    static constexpr int kUnroll = 2;
    static constexpr bool kCpuOrder = false;
    struct Raw {
        uint32_t ql[8], qh[8];
        float d0, d1;
        int quarter;
    };
    __device__ static Raw load(const uint8_t* row, int64_t sb, int64_t n_sub) {
        Raw r;
        const int64_t blk = sb >> 3;
        const uint8_t* b = row + blk * 208;
        const int s = int(sb & 7), n = s >> 2;
        r.quarter = s & 3;
        ldg_words(b + 64 * n + 32 * (r.quarter & 1), r.ql);
        ldg_words(b + 64 * n + 32 * (r.quarter & 1) + 16, r.ql + 4);
        ldg_words(b + 128 + 32 * n, r.qh);
        ldg_words(b + 144 + 32 * n, r.qh + 4);
        const uint16_t scw = __ldg(reinterpret_cast<const uint16_t*>(b + 192 + 8 * n + 2 * r.quarter));
        const float d = __half2float(__ldg(reinterpret_cast<const __half*>(row + 208 * (n_sub >> 3)) + blk));
        r.d0 = d * float(int8_t(scw & 0xFF)), r.d1 = d * float(int8_t(scw >> 8));
        return r;
    }
    __device__ static float dot(const Raw& w, const int (&x)[8], float2 ds) {
        const int lshift = w.quarter >= 2 ? 4 : 0, hshift = 2 * w.quarter;
        int s[2] = {0, 0};
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t q = ((w.ql[i] >> lshift) & 0x0F0F0F0Fu) | (((w.qh[i] >> hshift) & 0x03030303u) << 4);
            s[i / 4] = __dp4a(int(__vsub4(q, 0x20202020u)), x[i], s[i / 4]);
        }
        return w.d0 * ds.x * float(s[0]) + w.d1 * ds.x * float(s[1]);
    }
};

} // namespace lowbit::kernel::cuda::engine
