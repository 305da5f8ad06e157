// SPDX-License-Identifier: MIT
// Device decoding of the weight types the CUDA engine multiplies by (included by .cu files only).
// Every type is read in sub-blocks of 32 consecutive elements of a row: `Q::dequant32(row, sb, n_sub, w)` writes
// the 32 values of sub-block sb (elements [32·sb, 32·sb + 32)) of a row of n_sub sub-blocks starting at `row`. The
// formulas are those of the scheme references (src/scheme/<type>/*_ref.cpp, bit-exact with ggml's dequantize_row_*), so
// a GPU result differs from the CPU's only by the order of float additions. Block layouts (bytes, little endian):
//   f32/f16/bf16 plain; q8_0 {f16 d, i8 qs[32]}; q4_0 {f16 d, u8 qs[16]}; q4_1 {f16 d, f16 m, u8 qs[16]};
//   q5_0 {f16 d, u8 qh[4], u8 qs[16]}; q5_1 {f16 d, f16 m, u8 qh[4], u8 qs[16]};
//   q2_k {u8 scales[16], u8 qs[64], f16 d, f16 dmin}; q3_k {u8 hmask[32], u8 qs[64], u8 scales[12], f16 d};
//   q4_k {f16 d, f16 dmin, u8 scales[12], u8 qs[128]}; q5_k {f16 d, f16 dmin, u8 scales[12], u8 qh[32],
//   u8 qs[128]}; q6_k {u8 ql[128], u8 qh[64], i8 scales[16], f16 d}.
// Loads: q4_0, q8_0, q6_k, kI4Z, kNF4x64 and kFP4x64 are repacked at upload (gpu_repack.h: per row, the quant bytes of
// every block, then the f16 scales; rows padded to 16 bytes) so a lane reads a block's quants with 16-byte loads; q4_k
// and q5_k blocks are 16-byte multiples already; the other legacy types are read as 16-bit words (2-byte aligned
// blocks). Nibbles and bytes become floats by the exponent trick (byte b under exponent 2^23, minus 2^23: exact), one
// byte-permute and one add per value instead of an int-to-float conversion.
#pragma once

#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <type_traits>

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

// Byte k (0..3) of `word` as a float: 2^23 + byte, minus `bias` (2^23 + offset: exact for the byte range).
__device__ __forceinline__ float byte_float(uint32_t word, int k, float bias) {
    return __uint_as_float(__byte_perm(word, 0x4B000000u, 0x7650u + uint32_t(k))) - bias;
}
constexpr float kMagic = 8388608.0f; // 2^23

__device__ __forceinline__ void words16(const uint8_t* p, uint32_t (&u)[4]) {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
    u[0] = v.x, u[1] = v.y, u[2] = v.z, u[3] = v.w;
}

struct QF32 {
    static constexpr int kBlockElems = 1, kBlockBytes = 4;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32]) {
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
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32]) {
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
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32]) {
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

// q8_0, repacked: per row [qs: 32 bytes per block][d: f16 per block].
struct QQ8_0 {
    static constexpr int kBlockElems = 32, kBlockBytes = 34;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32]) {
        uint32_t u[8];
        words16(row + 32 * sb, *reinterpret_cast<uint32_t(*)[4]>(u));
        words16(row + 32 * sb + 16, *reinterpret_cast<uint32_t(*)[4]>(u + 4));
        const float d = __half2float(__ldg(reinterpret_cast<const __half*>(row + 32 * n_sub) + sb));
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t b = u[i] ^ 0x80808080u; // int8 -> q + 128
#pragma unroll
            for (int k = 0; k < 4; ++k) w[4 * i + k] = d * byte_float(b, k, kMagic + 128.0f);
        }
    }
};

// The 32 nibbles of 16 quant bytes as exact floats (byte j: low nibble = element j, high = element j + 16).
__device__ __forceinline__ void nibbles32(const uint8_t* p, float (&q)[32]) {
    uint32_t u[4];
    words16(p, u);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const uint32_t lo = u[i] & 0x0F0F0F0Fu, hi = (u[i] >> 4) & 0x0F0F0F0Fu;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            q[4 * i + k] = byte_float(lo, k, kMagic);
            q[16 + 4 * i + k] = byte_float(hi, k, kMagic);
        }
    }
}

// q4_0, repacked: per row [qs: 16 bytes per block][d: f16 per block].
struct QQ4_0 {
    static constexpr int kBlockElems = 32, kBlockBytes = 18;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32]) {
        nibbles32(row + 16 * sb, w);
        const float d = __half2float(__ldg(reinterpret_cast<const __half*>(row + 16 * n_sub) + sb));
#pragma unroll
        for (int i = 0; i < 32; ++i) w[i] = (w[i] - 8.0f) * d;
    }
};

// kI4Z (scheme/packed4: GPTQ/AWQ/HQQ/RTN int4 groups repacked at load), repacked again for the device: per row
// [qs: 16 bytes per block][(d, z): two f16 per block]. w = (q - z) * d, the CPU reference's expression.
// kGroupShift: one (d, z) per 2^kGroupShift blocks (gpu_repack.h: 2 for the int4 g128 files, whose 4 blocks of a
// group carry the same pair; the meta plane is then 1 byte per 32 weights: 4.25 bpw instead of 5.0).
template <int kGroupShift> struct QI4ZG {
    static constexpr int kBlockElems = 32, kBlockBytes = 20;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32]) {
        nibbles32(row + 16 * sb, w);
        const float2 dz =
            __half22float2(__ldg(reinterpret_cast<const __half2*>(row + 16 * n_sub) + (sb >> kGroupShift)));
#pragma unroll
        for (int i = 0; i < 32; ++i) w[i] = (w[i] - dz.y) * dz.x;
    }
};

// kNF4x64 / kFP4x64 (scheme/packed4: bitsandbytes 4-bit, repacked at load), repacked for the device: per row
// [qs: 16 bytes per sub-block of 32, byte m = elements 2m (low nibble) and 2m + 1 (high)][absmax: f32 per block of
// 64] (gpu_repack.h: the file block's low nibbles are sub-block 2b, its high nibbles 2b + 1); w = code[q] * absmax
// (the CPU reference's product). Sequential nibbles let the 8-bit-activation GEMV use a 16-bit slice of a quant word
// as four byte-permute selectors (gpu_quant_q8.cuh). The 16-entry code table is read from shared memory (`tab`,
// loaded per thread block by the kernels from the constant copy that prepare_decoder uploads): lanes index it freely
// without the serialisation of divergent constant-cache reads.
template <int kTableId> struct QF4x64 {
    static constexpr int kBlockElems = 64, kBlockBytes = 36, kTable = kTableId;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32],
                                     const float* __restrict__ tab) {
        uint32_t u[4];
        words16(row + 16 * sb, u);
        const float amax = __ldg(reinterpret_cast<const float*>(row + 16 * n_sub) + (sb >> 1));
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int k = 0; k < 8; ++k) w[8 * i + k] = tab[(u[i] >> (4 * k)) & 0xFu] * amax;
    }
};
using QNF4x64 = QF4x64<0>;
using QFP4x64 = QF4x64<1>;

template <class Q, class = void> struct HasTable : std::false_type {};
template <class Q> struct HasTable<Q, std::void_t<decltype(Q::kTable)>> : std::true_type {};
template <class Q> constexpr bool kHasTable = HasTable<Q>::value;

// The code tables of the table types (NF4, FP4), in constant memory; each kernel copies them to shared memory.
__constant__ float c_f4_tables[2][16];

// Per thread block: the shared copy of Q's table (nullptr for the other types). Every thread of the block must
// call it (it synchronises the block).
template <class Q> __device__ __forceinline__ const float* block_table() {
    if constexpr (kHasTable<Q>) {
        __shared__ float tab[16];
        if (threadIdx.x < 16) tab[threadIdx.x] = c_f4_tables[Q::kTable][threadIdx.x];
        __syncthreads();
        return tab;
    } else {
        return nullptr;
    }
}

// Q's 32 values of sub-block sb, with the table where Q has one.
template <class Q>
__device__ __forceinline__ void dequant(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32],
                                        const float* tab) {
    if constexpr (kHasTable<Q>)
        Q::dequant32(row, sb, n_sub, w, tab);
    else
        Q::dequant32(row, sb, n_sub, w);
}

struct QQ4_1 {
    static constexpr int kBlockElems = 32, kBlockBytes = 20;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32]) {
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
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32]) {
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
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32]) {
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
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32]) {
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
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t, float (&w)[32]) {
        const uint8_t* b = row + (sb >> 3) * kBlockBytes;
        const int s = int(sb & 7), pair = s >> 1, hi = s & 1;
        uint8_t head[16];
        load_bytes16<16>(b, head);
        uint32_t u[8];
        words16(b + 16 + 32 * pair, *reinterpret_cast<uint32_t(*)[4]>(u));
        words16(b + 32 + 32 * pair, *reinterpret_cast<uint32_t(*)[4]>(u + 4));
        const float d = half_at(head), dmin = half_at(head + 2);
        float sc, mn;
        scale_min_k4(s, head, sc, mn);
        const float d1 = d * sc, m1 = dmin * mn;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t q = (hi ? u[i] >> 4 : u[i]) & 0x0F0F0F0Fu;
#pragma unroll
            for (int k = 0; k < 4; ++k) w[4 * i + k] = fmaf(d1, byte_float(q, k, kMagic), -m1);
        }
    }
};

struct QQ5_K {
    static constexpr int kBlockElems = 256, kBlockBytes = 176; // 16-byte multiple
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32]) {
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
        for (int l = 0; l < 32; ++l) w[l] = d1 * float(int(hi ? q[l] >> 4 : q[l] & 0xF) + ((qh[l] & u) ? 16 : 0)) - m1;
    }
};

// q6_k, repacked: per row [ql, qh, scales: 208 bytes per block][d: f16 per block].
struct QQ6_K {
    static constexpr int kBlockElems = 256, kBlockBytes = 210;
    __device__ static void dequant32(const uint8_t* row, int64_t sb, int64_t n_sub, float (&w)[32]) {
        const int64_t blk = sb >> 3;
        const uint8_t* b = row + blk * 208;
        const int s = int(sb & 7), n = s >> 2, quarter = s & 3;
        uint32_t ql[8], qh[8];
        words16(b + 64 * n + 32 * (quarter & 1), *reinterpret_cast<uint32_t(*)[4]>(ql));
        words16(b + 64 * n + 32 * (quarter & 1) + 16, *reinterpret_cast<uint32_t(*)[4]>(ql + 4));
        words16(b + 128 + 32 * n, *reinterpret_cast<uint32_t(*)[4]>(qh));
        words16(b + 144 + 32 * n, *reinterpret_cast<uint32_t(*)[4]>(qh + 4));
        const uint16_t scw = __ldg(reinterpret_cast<const uint16_t*>(b + 192 + 8 * n + 2 * quarter));
        const float d = __half2float(__ldg(reinterpret_cast<const __half*>(row + 208 * (n_sub >> 3)) + blk));
        const float d0 = d * float(int8_t(scw & 0xFF)), d1 = d * float(int8_t(scw >> 8));
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t lo = (quarter >= 2 ? ql[i] >> 4 : ql[i]) & 0x0F0F0F0Fu;
            const uint32_t q = lo | (((qh[i] >> (2 * quarter)) & 0x03030303u) << 4);
#pragma unroll
            for (int k = 0; k < 4; ++k) w[4 * i + k] = (i < 4 ? d0 : d1) * byte_float(q, k, kMagic + 32.0f);
        }
    }
};

} // namespace lowbit::kernel::cuda::engine
