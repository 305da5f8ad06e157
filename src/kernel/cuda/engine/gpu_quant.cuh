// SPDX-License-Identifier: MIT
// Device decoding of the weight types the CUDA engine multiplies by (included by .cu files only).
// Every type is read in sub-blocks of 32 consecutive elements of a row: `Q::dequant32(row, sb, w)` writes the
// 32 values of sub-block sb (elements [32·sb, 32·sb + 32)) of a row whose bytes start at `row`. The formulas are
// those of the scheme references (src/scheme/<type>/*_ref.cpp, bit-exact with ggml's dequantize_row_*), so a GPU
// result differs from the CPU's only by the order of float additions. Block layouts (bytes, little endian):
//   f32/f16/bf16 plain; q8_0 {f16 d, i8 qs[32]}; q4_0 {f16 d, u8 qs[16]}; q4_1 {f16 d, f16 m, u8 qs[16]};
//   q5_0 {f16 d, u8 qh[4], u8 qs[16]}; q5_1 {f16 d, f16 m, u8 qh[4], u8 qs[16]};
//   q2_k {u8 scales[16], u8 qs[64], f16 d, f16 dmin}; q3_k {u8 hmask[32], u8 qs[64], u8 scales[12], f16 d};
//   q4_k {f16 d, f16 dmin, u8 scales[12], u8 qs[128]}; q5_k {f16 d, f16 dmin, u8 scales[12], u8 qh[32],
//   u8 qs[128]}; q6_k {u8 ql[128], u8 qh[64], i8 scales[16], f16 d}.
// Loads: blocks of the legacy types are only 2-byte aligned, so their bytes are read as 16-bit words; plain
// types and the 16-byte multiples (q4_k, q5_k) use 16-byte vector loads.
#pragma once

#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace lowbit::kernel::cuda::engine {

__device__ __forceinline__ float half_at(const uint8_t* p) {
    return __half2float(*reinterpret_cast<const __half*>(p));
}

// n bytes (n even) from a 2-byte aligned address into b[], as 16-bit loads.
template <int N> __device__ __forceinline__ void load_bytes2(const uint8_t* p, uint8_t (&b)[N]) {
    static_assert(N % 2 == 0);
    const uint16_t* w = reinterpret_cast<const uint16_t*>(p);
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
        const uint16_t v = __ldg(w + i);
        b[2 * i] = uint8_t(v & 0xFF), b[2 * i + 1] = uint8_t(v >> 8);
    }
}

// N bytes (N % 16 == 0) from a 16-byte aligned address.
template <int N> __device__ __forceinline__ void load_bytes16(const uint8_t* p, uint8_t (&b)[N]) {
    static_assert(N % 16 == 0);
#pragma unroll
    for (int i = 0; i < N / 16; ++i) {
        const uint4 v = __ldg(reinterpret_cast<const uint4*>(p) + i);
        const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int j = 0; j < 16; ++j) b[16 * i + j] = uint8_t(w[j / 4] >> (8 * (j % 4)));
    }
}

struct QF32 {
    static constexpr int kBlockElems = 1, kBlockBytes = 4;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, float (&w)[32]) {
        const float4* p = reinterpret_cast<const float4*>(row + sb * 128);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const float4 v = __ldg(p + i);
            w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
        }
    }
};

struct QF16 {
    static constexpr int kBlockElems = 1, kBlockBytes = 2;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, float (&w)[32]) {
        const uint4* p = reinterpret_cast<const uint4*>(row + sb * 64);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint4 v = __ldg(p + i);
            const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&u[j]));
                w[8 * i + 2 * j] = f.x, w[8 * i + 2 * j + 1] = f.y;
            }
        }
    }
};

struct QBF16 {
    static constexpr int kBlockElems = 1, kBlockBytes = 2;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, float (&w)[32]) {
        const uint4* p = reinterpret_cast<const uint4*>(row + sb * 64);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint4 v = __ldg(p + i);
            const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                w[8 * i + 2 * j] = __uint_as_float(u[j] << 16);
                w[8 * i + 2 * j + 1] = __uint_as_float(u[j] & 0xFFFF0000u);
            }
        }
    }
};

struct QQ8_0 {
    static constexpr int kBlockElems = 32, kBlockBytes = 34;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, float (&w)[32]) {
        const uint8_t* b = row + sb * kBlockBytes;
        uint8_t q[32];
        load_bytes2<32>(b + 2, q);
        const float d = half_at(b);
#pragma unroll
        for (int i = 0; i < 32; ++i) w[i] = d * float(int8_t(q[i]));
    }
};

struct QQ4_0 {
    static constexpr int kBlockElems = 32, kBlockBytes = 18;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, float (&w)[32]) {
        const uint8_t* b = row + sb * kBlockBytes;
        uint8_t q[16];
        load_bytes2<16>(b + 2, q);
        const float d = half_at(b);
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            w[i] = d * float(int(q[i] & 0xF) - 8);
            w[i + 16] = d * float(int(q[i] >> 4) - 8);
        }
    }
};

struct QQ4_1 {
    static constexpr int kBlockElems = 32, kBlockBytes = 20;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, float (&w)[32]) {
        const uint8_t* b = row + sb * kBlockBytes;
        uint8_t q[16];
        load_bytes2<16>(b + 4, q);
        const float d = half_at(b), m = half_at(b + 2);
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            w[i] = float(q[i] & 0xF) * d + m;
            w[i + 16] = float(q[i] >> 4) * d + m;
        }
    }
};

template <bool kHasMin> struct QQ5 {
    static constexpr int kBlockElems = 32, kBlockBytes = kHasMin ? 24 : 22;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, float (&w)[32]) {
        const uint8_t* b = row + sb * kBlockBytes;
        constexpr int kQh = kHasMin ? 4 : 2;
        uint8_t q[20];
        load_bytes2<20>(b + kQh, q); // qh[4] then qs[16]
        const uint32_t qh = uint32_t(q[0]) | uint32_t(q[1]) << 8 | uint32_t(q[2]) << 16 | uint32_t(q[3]) << 24;
        const float d = half_at(b), m = kHasMin ? half_at(b + 2) : 0.0f;
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const int xh0 = int(((qh >> j) << 4) & 0x10), xh1 = int((qh >> (j + 12)) & 0x10);
            const int x0 = int(q[4 + j] & 0xF) | xh0, x1 = int(q[4 + j] >> 4) | xh1;
            if (kHasMin) {
                w[j] = float(x0) * d + m;
                w[j + 16] = float(x1) * d + m;
            } else {
                w[j] = float(x0 - 16) * d;
                w[j + 16] = float(x1 - 16) * d;
            }
        }
    }
};
using QQ5_0 = QQ5<false>;
using QQ5_1 = QQ5<true>;

// K-quants: super-blocks of 256 elements = 8 sub-blocks of 32.
struct QQ2_K {
    static constexpr int kBlockElems = 256, kBlockBytes = 84;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, float (&w)[32]) {
        const uint8_t* b = row + (sb >> 3) * kBlockBytes;
        const int s = int(sb & 7), n = s >> 2, j = s & 3;
        uint8_t q[32], sc[2];
        load_bytes2<32>(b + 16 + 32 * n, q);
        const uint16_t scw = __ldg(reinterpret_cast<const uint16_t*>(b + n * 8 + j * 2));
        sc[0] = uint8_t(scw & 0xFF), sc[1] = uint8_t(scw >> 8);
        const float d = half_at(b + 80), dmin = half_at(b + 82);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const float dl = d * float(sc[half] & 0xF), ml = dmin * float(sc[half] >> 4);
#pragma unroll
            for (int l = 0; l < 16; ++l) w[16 * half + l] = dl * float((q[16 * half + l] >> (2 * j)) & 3) - ml;
        }
    }
};

struct QQ3_K {
    static constexpr int kBlockElems = 256, kBlockBytes = 110;
    __device__ static int scale(const uint8_t (&scales)[12], int j) {
        int sc = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
        sc |= ((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4;
        return sc - 32;
    }
    __device__ static void dequant32(const uint8_t* row, int64_t sb, float (&w)[32]) {
        const uint8_t* b = row + (sb >> 3) * kBlockBytes;
        const int s = int(sb & 7), n = s >> 2, j = s & 3;
        uint8_t hm[32], q[32], scales[12];
        load_bytes2<32>(b, hm);
        load_bytes2<32>(b + 32 + 32 * n, q);
        load_bytes2<12>(b + 96, scales);
        const float d_all = half_at(b + 108);
        const uint8_t m = uint8_t(1u << (4 * n + j));
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const float dl = d_all * float(scale(scales, 8 * n + 2 * j + half));
#pragma unroll
            for (int l = 0; l < 16; ++l) {
                const int h = 16 * half + l;
                w[h] = dl * float(int((q[h] >> (2 * j)) & 3) - ((hm[h] & m) ? 0 : 4));
            }
        }
    }
};

// Scale and min of sub-block j (0..7) of a q4_k/q5_k super-block (ggml's get_scale_min_k4).
__device__ __forceinline__ void scale_min_k4(int j, const uint8_t (&q)[16], float& sc, float& mn) {
    // q[0..3] = d, dmin; q[4..15] = scales[12]
    const uint8_t* s = q + 4;
    if (j < 4) {
        sc = float(s[j] & 63), mn = float(s[j + 4] & 63);
    } else {
        sc = float((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        mn = float((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

struct QQ4_K {
    static constexpr int kBlockElems = 256, kBlockBytes = 144; // 16-byte multiple: vector loads
    __device__ static void dequant32(const uint8_t* row, int64_t sb, float (&w)[32]) {
        const uint8_t* b = row + (sb >> 3) * kBlockBytes;
        const int s = int(sb & 7), pair = s >> 1, hi = s & 1;
        uint8_t head[16], q[32];
        load_bytes16<16>(b, head);
        load_bytes16<32>(b + 16 + 32 * pair, q);
        const float d = half_at(head), dmin = half_at(head + 2);
        float sc, mn;
        scale_min_k4(s, head, sc, mn);
        const float d1 = d * sc, m1 = dmin * mn;
#pragma unroll
        for (int l = 0; l < 32; ++l) w[l] = d1 * float(hi ? q[l] >> 4 : q[l] & 0xF) - m1;
    }
};

struct QQ5_K {
    static constexpr int kBlockElems = 256, kBlockBytes = 176; // 16-byte multiple
    __device__ static void dequant32(const uint8_t* row, int64_t sb, float (&w)[32]) {
        const uint8_t* b = row + (sb >> 3) * kBlockBytes;
        const int s = int(sb & 7), pair = s >> 1, hi = s & 1;
        uint8_t head[16], qh[32], q[32];
        load_bytes16<16>(b, head);
        load_bytes16<32>(b + 16, qh);
        load_bytes16<32>(b + 48 + 32 * pair, q);
        const float d = half_at(head), dmin = half_at(head + 2);
        float sc, mn;
        scale_min_k4(s, head, sc, mn);
        const float d1 = d * sc, m1 = dmin * mn;
        const uint8_t u = uint8_t(1u << s);
#pragma unroll
        for (int l = 0; l < 32; ++l)
            w[l] = d1 * float(int(hi ? q[l] >> 4 : q[l] & 0xF) + ((qh[l] & u) ? 16 : 0)) - m1;
    }
};

struct QQ6_K {
    static constexpr int kBlockElems = 256, kBlockBytes = 210;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, float (&w)[32]) {
        const uint8_t* b = row + (sb >> 3) * kBlockBytes;
        const int s = int(sb & 7), n = s >> 2, quarter = s & 3;
        uint8_t ql[32], qh[32], sc[2];
        load_bytes2<32>(b + 64 * n + 32 * (quarter & 1), ql);
        load_bytes2<32>(b + 128 + 32 * n, qh);
        const uint16_t scw = __ldg(reinterpret_cast<const uint16_t*>(b + 192 + 8 * n + 2 * quarter));
        sc[0] = uint8_t(scw & 0xFF), sc[1] = uint8_t(scw >> 8);
        const float d = half_at(b + 208);
#pragma unroll
        for (int l = 0; l < 32; ++l) {
            const int nib = quarter >= 2 ? ql[l] >> 4 : ql[l] & 0xF;
            const int h = (qh[l] >> (2 * quarter)) & 3;
            w[l] = d * float(int8_t(sc[l / 16])) * float((nib | (h << 4)) - 32);
        }
    }
};

} // namespace lowbit::kernel::cuda::engine
