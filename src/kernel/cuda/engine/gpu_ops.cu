// SPDX-License-Identifier: MIT
// The CUDA engine's device ops (see gpu_ops.cuh).
#include "kernel/cuda/engine/f4_tables.h"
#include "kernel/cuda/engine/gpu_ops.cuh"
#include "kernel/cuda/engine/gpu_quant.cuh"
#include "kernel/cuda/engine/gpu_quant_q8.cuh"
#include "kernel/cuda/engine/gpu_repack.h"

#include <algorithm>
#include <cfloat>
#include <cstdlib>
#include <string>

namespace lowbit::kernel::cuda::engine {
namespace {

constexpr int kWarp = 32;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Programmatic dependent launch (sm_90+): the step's kernels are launched with
// cudaLaunchAttributeProgrammaticStreamSerialization, so a kernel's blocks may be scheduled while its predecessor's
// last blocks still run (the launch latency between the ~10 kernels of a layer overlaps). Every such kernel starts
// with pdl_begin(): griddepcontrol.wait blocks until the predecessor grid has completed and its writes are visible —
// before any read or write of this kernel — then launch_dependents lets the next kernel's blocks be scheduled.
// LOWBIT_PDL=0 launches them plainly (A/B).
__device__ __forceinline__ void pdl_begin() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

bool pdl_enabled() {
    static const bool on = [] {
        const char* e = std::getenv("LOWBIT_PDL");
        if (e && std::string(e) == "0") return false;
        int dev = 0, major = 0;
        return cudaGetDevice(&dev) == cudaSuccess &&
               cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
    }();
    return on;
}

// kernel<<<grid, block, 0, stream>>>(args...), with programmatic dependent launch when enabled (the kernel must
// begin with pdl_begin()).
template <class... KArgs, class... Args>
cudaError_t launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, cudaStream_t stream, Args... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = 0, cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr, cfg.numAttrs = pdl_enabled() ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, KArgs(args)...);
}

// Calls f(Q{}) with the decoder struct of `dtype` (and device `layout`: kI4Z's group shift, gpu_repack.h); false
// when the engine has none.
template <class F> bool with_type(DType dtype, int layout, F&& f) {
    switch (dtype) {
    case DType::kF32:
        f(QF32{});
        return true;
    case DType::kF16:
        f(QF16{});
        return true;
    case DType::kBF16:
        f(QBF16{});
        return true;
    case DType::kQ8_0:
        f(QQ8_0{});
        return true;
    case DType::kQ4_0:
        f(QQ4_0{});
        return true;
    case DType::kQ4_1:
        f(QQ4_1{});
        return true;
    case DType::kQ5_0:
        f(QQ5_0{});
        return true;
    case DType::kQ5_1:
        f(QQ5_1{});
        return true;
    case DType::kQ2_K:
        f(QQ2_K{});
        return true;
    case DType::kQ3_K:
        f(QQ3_K{});
        return true;
    case DType::kQ4_K:
        f(QQ4_K{});
        return true;
    case DType::kQ5_K:
        f(QQ5_K{});
        return true;
    case DType::kQ6_K:
        f(QQ6_K{});
        return true;
    case DType::kI4Z:
        if (layout == kLayoutI4ZG128)
            f(QI4ZG<kLayoutI4ZG128>{});
        else
            f(QI4ZG<0>{});
        return true;
    case DType::kNF4x64:
        f(QNF4x64{});
        return true;
    case DType::kFP4x64:
        f(QFP4x64{});
        return true;
    default:
        return false;
    }
}

constexpr int kGemvWarps = 4;

// ---- GEMV, tiled variant (the default): the block's 4 warps share activation tiles of 32 sub-blocks (1024
// columns) × MT tokens staged in shared memory by coalesced 16-byte loads (a lane owning a whole sub-block would
// read x with a 128-byte stride: 8 cache lines per quarter-warp request). Each sub-block is padded to 36 floats so
// the 16-byte shared loads of 8 lanes hit distinct banks. Per lane: one sub-block of each of the warp's R rows per
// tile; for one token the lane's 32 activations are read once and reused for every row, for more tokens each row
// is decoded once and each token's activations are read once per R rows held in registers. ----
constexpr int kTileSub = 32, kTilePad = 9; // float4 per padded sub-block
template <int MT> constexpr int kTileRows = MT == 1 ? 4 : 2;

template <class Q, int MT>
__global__ void __launch_bounds__(kGemvWarps* kWarp)
    gemv_tile_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n_rows, int64_t n_cols,
                     const float* __restrict__ x, int m, const float* __restrict__ bias, float* __restrict__ y,
                     int accumulate) {
    pdl_begin();
    constexpr int R = kTileRows<MT>;
    __shared__ float4 xs_sm[MT][kTileSub][kTilePad];
    const float* tab = block_table<Q>();
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int64_t row0 = (int64_t(blockIdx.x) * kGemvWarps + warp) * R;
    const int64_t n_sub = n_cols / 32;
    const int n_r = row0 >= n_rows ? 0 : (n_rows - row0 < R ? int(n_rows - row0) : R);
    float acc[R][MT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < MT; ++t) acc[r][t] = 0.0f;
    for (int64_t k0 = 0; k0 < n_sub; k0 += kTileSub) {
        const int tile = n_sub - k0 < kTileSub ? int(n_sub - k0) : kTileSub;
        if (k0 > 0) __syncthreads(); // the previous tile is consumed
        for (int i = threadIdx.x; i < MT * kTileSub * 8; i += kGemvWarps * kWarp) {
            const int t = i / (kTileSub * 8), sbl = (i / 8) % kTileSub, q = i % 8;
            if (t < m && sbl < tile)
                xs_sm[t][sbl][q] =
                    __ldg(reinterpret_cast<const float4*>(x + int64_t(t) * n_cols + (k0 + sbl) * 32) + q);
        }
        __syncthreads();
        if (lane >= tile || n_r == 0) continue;
        const int64_t sb = k0 + lane;
        if constexpr (MT == 1) {
            float xv[32];
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const float4 f = xs_sm[0][lane][i];
                xv[4 * i] = f.x, xv[4 * i + 1] = f.y, xv[4 * i + 2] = f.z, xv[4 * i + 3] = f.w;
            }
#pragma unroll
            for (int r = 0; r < R; ++r) {
                if (r >= n_r) break;
                float v[32];
                dequant<Q>(w + uint64_t(row0 + r) * row_bytes, sb, n_sub, v, tab);
                float s = 0.0f;
#pragma unroll
                for (int i = 0; i < 32; ++i) s = fmaf(v[i], xv[i], s);
                acc[r][0] += s;
            }
        } else {
            float v[R][32];
#pragma unroll
            for (int r = 0; r < R; ++r) {
                if (r < n_r)
                    dequant<Q>(w + uint64_t(row0 + r) * row_bytes, sb, n_sub, v[r], tab);
                else
#pragma unroll
                    for (int i = 0; i < 32; ++i) v[r][i] = 0.0f;
            }
#pragma unroll
            for (int t = 0; t < MT; ++t) {
                if (t >= m) break;
                float s[R];
#pragma unroll
                for (int r = 0; r < R; ++r) s[r] = 0.0f;
#pragma unroll
                for (int i = 0; i < 8; ++i) {
                    const float4 f = xs_sm[t][lane][i];
#pragma unroll
                    for (int r = 0; r < R; ++r) {
                        s[r] = fmaf(v[r][4 * i], f.x, s[r]);
                        s[r] = fmaf(v[r][4 * i + 1], f.y, s[r]);
                        s[r] = fmaf(v[r][4 * i + 2], f.z, s[r]);
                        s[r] = fmaf(v[r][4 * i + 3], f.w, s[r]);
                    }
                }
#pragma unroll
                for (int r = 0; r < R; ++r) acc[r][t] += s[r];
            }
        }
    }
    if (n_r == 0) return;
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < MT; ++t) {
            const float s = warp_sum(acc[r][t]);
            if (lane == 0 && r < n_r && t < m) {
                const int64_t row = row0 + r;
                float* out = y + int64_t(t) * n_rows + row;
                *out = (accumulate ? *out : 0.0f) + s + (bias ? bias[row] : 0.0f);
            }
        }
}

// LOWBIT_GEMV=f32 (read once): every type's GEMV takes f32 activations (the tiled kernel) — for A/B runs against
// the default, where the gemv_q8_type types take 8-bit activations.
bool gemv_force_f32() {
    static const bool f32 = [] {
        const char* e = std::getenv("LOWBIT_GEMV");
        return e && std::string(e) == "f32";
    }();
    return f32;
}

// LOWBIT_GEMV_ORDER=cpu (read once): q8_0 / q4_0 GEMVs sum in the CPU's order (gemv_q8_cpu_order: the CPU qdot's
// bits) instead of lane partial sums and a warp tree. Opt-in: on an H100 it cost 9-27 % at m = 1 and 2x at m = 8
// (docs/device/cuda-late-session-h100.txt), and with it the reference model's Q8_0 greedy text still left the CPU's
// after ~15 tokens — the other ops' last bits (norms, attention) decide the near-ties, not the GEMV's order.
bool gemv_cpu_order() {
    static const bool cpu = [] {
        const char* e = std::getenv("LOWBIT_GEMV_ORDER");
        return e && std::string(e) == "cpu";
    }();
    return cpu;
}

template <class Q, int MT>
void launch_gemv_mt(const uint8_t* w, uint64_t row_bytes, int64_t n_rows, int64_t n_cols, const float* x, int m,
                    const float* bias, float* y, int a, cudaStream_t st) {
    const int64_t per_block = int64_t(kGemvWarps) * kTileRows<MT>;
    launch_pdl(gemv_tile_kernel<Q, MT>, dim3(unsigned((n_rows + per_block - 1) / per_block)), dim3(kGemvWarps * kWarp),
               st, w, row_bytes, n_rows, n_cols, x, m, bias, y, a);
}

template <class Q>
cudaError_t gemv_for(const uint8_t* w, uint64_t row_bytes, int64_t n_rows, int64_t n_cols, const float* x, int64_t m,
                     const float* bias, float* y, bool acc, cudaStream_t st) {
    const int mi = int(m), a = acc ? 1 : 0;
    if (m == 1)
        launch_gemv_mt<Q, 1>(w, row_bytes, n_rows, n_cols, x, mi, bias, y, a, st);
    else if (m == 2)
        launch_gemv_mt<Q, 2>(w, row_bytes, n_rows, n_cols, x, mi, bias, y, a, st);
    else if (m <= 4)
        launch_gemv_mt<Q, 4>(w, row_bytes, n_rows, n_cols, x, mi, bias, y, a, st);
    else
        launch_gemv_mt<Q, 8>(w, row_bytes, n_rows, n_cols, x, mi, bias, y, a, st);
    return cudaGetLastError();
}

// ---- GEMV with 8-bit activations (gpu_quant_q8.cuh): x is quantized once per matmul (quantize_q8_kernel) to
// xq [m, K] int8 and ds [m, K / 32] {d, Σ q}; each lane owns sub-blocks lane, lane + 32, … of its warp's R rows and
// loads U of them per row before using any (U · R independent 16-byte loads in flight per lane), then reads the
// matching activation words (L1/L2-resident: every warp reads the same x) once per token for all R rows. No shared
// memory, no barrier (q8_0 / q4_0: see gemv_q8_cpu_order). ----
template <class Q> struct Q8Of { using type = void; };
template <> struct Q8Of<QQ8_0> { using type = Q8Q8_0; };
template <> struct Q8Of<QQ4_0> { using type = Q8Q4_0; };
template <int S> struct Q8Of<QI4ZG<S>> { using type = Q8I4ZG<S>; };
template <> struct Q8Of<QQ4_K> { using type = Q8Q4_K; };
template <> struct Q8Of<QQ5_K> { using type = Q8Q5_K; };
template <> struct Q8Of<QQ6_K> { using type = Q8Q6_K; };
template <> struct Q8Of<QNF4x64> { using type = Q8F4x64<0>; };
template <> struct Q8Of<QFP4x64> { using type = Q8F4x64<1>; };

// One warp per block of 32: the CPU quantizer's expressions (qdot.cpp quantize_group) — amax, d = amax / 127,
// id = 1 / d (IEEE division: no fast-math in this file), q = round-half-even(x · id) — and the exact integer sum.
// Called by a whole warp whose lanes hold the 32 values of activation block `blk` in order (also fused into the
// ops that produce a GEMV's input: rms_norm, silu_mul, the attention merge).
__device__ __forceinline__ void quantize_q8_block(float v, int lane, int64_t blk, int8_t* __restrict__ xq,
                                                  float2* __restrict__ ds) {
    float amax = fabsf(v);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float d = amax / 127.0f;
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    const int q = __float2int_rn(v * id);
    xq[blk * 32 + lane] = int8_t(q);
    int sum = q;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (lane == 0) ds[blk] = make_float2(d, float(sum));
}

__global__ void quantize_q8_kernel(const float* __restrict__ x, int64_t n_blocks, int8_t* __restrict__ xq,
                                   float2* __restrict__ ds) {
    pdl_begin();
    const int lane = threadIdx.x % kWarp;
    const int64_t blk = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
    if (blk >= n_blocks) return;
    quantize_q8_block(x[blk * 32 + lane], lane, blk, xq, ds);
}

// Token t's activation words and {d, Σ q} for sub-block sb (xq [m, K] int8, ds [m, K / 32]).
__device__ __forceinline__ float2 load_q8_act(const int8_t* __restrict__ xq, const float2* __restrict__ ds, int t,
                                              int64_t n_cols, int64_t sb, int (&xw)[8]) {
    const int4* xp = reinterpret_cast<const int4*>(xq + int64_t(t) * n_cols + sb * 32);
    const int4 a = __ldg(xp), b = __ldg(xp + 1);
    xw[0] = a.x, xw[1] = a.y, xw[2] = a.z, xw[3] = a.w, xw[4] = b.x, xw[5] = b.y, xw[6] = b.z, xw[7] = b.w;
    return __ldg(ds + int64_t(t) * (n_cols / 32) + sb);
}

// The CPU's order (q8_0, q4_0: kernel/cpu/qdot's scalar dot, which its AVX2 rows dots match bit for bit): per row
// and token one chain acc = fma(dw·dx, float(Σ qw·qx), acc) over the sub-blocks 0, 1, 2, … in order, so the GEMV's
// result is the CPU's bits (the quantized activations already are). The lanes compute (dw·dx, Σ) of 32·U consecutive
// sub-blocks in parallel into shared memory; lane r·MT + t then folds them into its chain, one fma each.
template <class Q8, int R, int MT, int U>
__device__ __forceinline__ void gemv_q8_cpu_order(const uint8_t* const (&wr)[R], int64_t n_rows, int64_t n_cols,
                                                  int64_t row0, int lane, int warp, const int8_t* __restrict__ xq,
                                                  const float2* __restrict__ ds, int m, const float* __restrict__ bias,
                                                  float* __restrict__ y, int accumulate) {
    __shared__ float2 part[kGemvWarps][kWarp * U][R * MT];
    const int64_t n_sub = n_cols / 32;
    const int chain_r = lane / MT, chain_t = lane % MT;
    const bool chain_lane = lane < R * MT && chain_t < m;
    float acc = 0.0f;
    for (int64_t base = 0; base < n_sub; base += int64_t(kWarp) * U) {
        typename Q8::Raw raw[U][R];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int64_t sb = min(base + int64_t(kWarp) * u + lane, n_sub - 1);
#pragma unroll
            for (int r = 0; r < R; ++r) raw[u][r] = Q8::load(wr[r], sb, n_sub);
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int64_t sb = base + int64_t(kWarp) * u + lane;
            if (sb >= n_sub) break;
#pragma unroll
            for (int t = 0; t < MT; ++t) {
                if (t >= m) break;
                int xw[8];
                const float2 d = load_q8_act(xq, ds, t, n_cols, sb, xw);
#pragma unroll
                for (int r = 0; r < R; ++r)
                    part[warp][kWarp * u + lane][r * MT + t] =
                        make_float2(__fmul_rn(raw[u][r].d, d.x), float(Q8::isum(raw[u][r], xw, d)));
            }
        }
        __syncwarp();
        if (chain_lane) {
            const int n = int(min(int64_t(kWarp) * U, n_sub - base));
#pragma unroll 8
            for (int j = 0; j < n; ++j) {
                const float2 p = part[warp][j][lane];
                acc = __fmaf_rn(p.x, p.y, acc);
            }
        }
        __syncwarp();
    }
    if (chain_lane && row0 + chain_r < n_rows) {
        const int64_t row = row0 + chain_r;
        float* out = y + int64_t(chain_t) * n_rows + row;
        *out = (accumulate ? *out : 0.0f) + acc + (bias ? bias[row] : 0.0f);
    }
}

// kCpuOrder: a separate instantiation (only for the Q8 types that have one), so the default kernel keeps no
// shared memory for the opt-in order's partial sums.
template <class Q8, int R, int MT, int U, bool kCpuOrder>
__global__ void __launch_bounds__(kGemvWarps* kWarp)
    gemv_q8_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n_rows, int64_t n_cols,
                   const int8_t* __restrict__ xq, const float2* __restrict__ ds, int m, const float* __restrict__ bias,
                   float* __restrict__ y, int accumulate) {
    pdl_begin();
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int64_t row0 = (int64_t(blockIdx.x) * kGemvWarps + warp) * R;
    if (row0 >= n_rows) return;
    const int64_t n_sub = n_cols / 32;
    const uint8_t* wr[R];
#pragma unroll
    for (int r = 0; r < R; ++r)
        wr[r] = w + uint64_t(min(row0 + r, n_rows - 1)) * row_bytes; // clamped: loads stay in
                                                                     // bounds, not written
    if constexpr (kCpuOrder) {
        gemv_q8_cpu_order<Q8, R, MT, U>(wr, n_rows, n_cols, row0, lane, warp, xq, ds, m, bias, y, accumulate);
        return;
    }
    float acc[R][MT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < MT; ++t) acc[r][t] = 0.0f;
    for (int64_t base = lane; base < n_sub; base += int64_t(kWarp) * U) {
        typename Q8::Raw raw[U][R];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int64_t sb = min(base + int64_t(kWarp) * u, n_sub - 1);
#pragma unroll
            for (int r = 0; r < R; ++r) raw[u][r] = Q8::load(wr[r], sb, n_sub);
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int64_t sb = base + int64_t(kWarp) * u;
            if (sb >= n_sub) break;
#pragma unroll
            for (int t = 0; t < MT; ++t) {
                if (t >= m) break;
                int xw[8];
                const float2 d = load_q8_act(xq, ds, t, n_cols, sb, xw);
#pragma unroll
                for (int r = 0; r < R; ++r) acc[r][t] += Q8::dot(raw[u][r], xw, d);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < MT; ++t) {
            const float s = warp_sum(acc[r][t]);
            if (lane == 0 && row0 + r < n_rows && t < m) {
                const int64_t row = row0 + r;
                float* out = y + int64_t(t) * n_rows + row;
                *out = (accumulate ? *out : 0.0f) + s + (bias ? bias[row] : 0.0f);
            }
        }
}

template <class Q8, int MT>
void launch_gemv_q8_mt(const uint8_t* w, uint64_t row_bytes, int64_t n_rows, int64_t n_cols, const int8_t* xq,
                       const float2* ds, int m, const float* bias, float* y, int a, cudaStream_t st) {
    constexpr int R = 2, U = MT == 1 ? Q8::kUnroll : MT == 2 ? (Q8::kUnroll + 1) / 2 : 1;
    const int64_t per_block = int64_t(kGemvWarps) * R;
    const dim3 grid(unsigned((n_rows + per_block - 1) / per_block)), block(kGemvWarps * kWarp);
    if constexpr (Q8::kCpuOrder)
        if (gemv_cpu_order()) {
            launch_pdl(gemv_q8_kernel<Q8, R, MT, U, true>, grid, block, st, w, row_bytes, n_rows, n_cols, xq, ds, m,
                       bias, y, a);
            return;
        }
    launch_pdl(gemv_q8_kernel<Q8, R, MT, U, false>, grid, block, st, w, row_bytes, n_rows, n_cols, xq, ds, m, bias, y,
               a);
}

// ---- dequantization to dense 16-bit rows (prefill GEMMs) and embedding rows ----
template <class Q, bool kBf16>
__global__ void dequant_matrix_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n_rows, int64_t n_cols,
                                      void* __restrict__ out) {
    const float* tab = block_table<Q>();
    const int64_t n_sub = n_cols / 32;
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n_rows * n_sub) return;
    const int64_t row = i / n_sub, sb = i % n_sub;
    float v[32];
    dequant<Q>(w + uint64_t(row) * row_bytes, sb, n_sub, v, tab);
    uint4* dst = reinterpret_cast<uint4*>(static_cast<uint16_t*>(out) + row * n_cols + sb * 32);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        uint32_t u[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            if (kBf16) {
                const __nv_bfloat162 h = __floats2bfloat162_rn(v[8 * j + 2 * k], v[8 * j + 2 * k + 1]);
                u[k] = *reinterpret_cast<const uint32_t*>(&h);
            } else {
                const __half2 h = __floats2half2_rn(v[8 * j + 2 * k], v[8 * j + 2 * k + 1]);
                u[k] = *reinterpret_cast<const uint32_t*>(&h);
            }
        }
        dst[j] = make_uint4(u[0], u[1], u[2], u[3]);
    }
}

template <class Q>
__global__ void embed_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n_cols,
                             const int32_t* __restrict__ token, float* __restrict__ hidden) {
    const float* tab = block_table<Q>();
    const int64_t t = blockIdx.x;
    const uint8_t* wr = w + uint64_t(token[t]) * row_bytes;
    for (int64_t sb = threadIdx.x; sb < n_cols / 32; sb += blockDim.x) {
        float v[32];
        dequant<Q>(wr, sb, n_cols / 32, v, tab);
        float* dst = hidden + t * n_cols + sb * 32;
#pragma unroll
        for (int i = 0; i < 32; ++i) dst[i] = v[i];
    }
}

// ---- elementwise and row ops ----
__global__ void to_half_kernel(const float* __restrict__ x, __half* __restrict__ y, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) y[i] = __float2half_rn(x[i]);
}

__global__ void to_bf16_kernel(const float* __restrict__ x, __nv_bfloat16* __restrict__ y, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) y[i] = __float2bfloat16_rn(x[i]);
}

__global__ void add_bias_kernel(float* __restrict__ y, const float* __restrict__ bias, int64_t total, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < total) y[i] += bias[i % n];
}

// With xq: also quantizes the output for a GEMV (n % 32 == 0: every warp covers one whole block or none).
__global__ void silu_mul_kernel(const float* g, int64_t gs, const float* u, int64_t us, float* out, int64_t n_rows,
                                int64_t n, int8_t* __restrict__ xq, float2* __restrict__ ds) {
    pdl_begin();
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n_rows * n) return;
    const int64_t t = i / n, c = i % n;
    const float v = g[t * gs + c];
    const float o = v / (1.0f + expf(-v)) * u[t * us + c];
    out[i] = o;
    if (xq) quantize_q8_block(o, threadIdx.x % kWarp, i / 32, xq, ds);
}

__global__ void gather_rows_kernel(const float* __restrict__ src, const int32_t* __restrict__ rows, int64_t n,
                                   float* __restrict__ dst) {
    pdl_begin();
    const int64_t r = blockIdx.x;
    const float* s = src + int64_t(rows[r]) * n;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) dst[r * n + i] = s[i];
}

__global__ void gather_cols_kernel(const float* __restrict__ x, int64_t k, const int32_t* __restrict__ perm,
                                   float* __restrict__ y) {
    pdl_begin();
    const int64_t t = blockIdx.y;
    for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < k; j += int64_t(gridDim.x) * blockDim.x)
        y[t * k + j] = x[t * k + perm[j]];
}

constexpr int kNormThreads = 1024; // one block per row: a 4096-wide row is 4 elements per thread

__global__ void __launch_bounds__(kNormThreads)
    rms_norm_kernel(const float* x, const float* __restrict__ weight, float* y, int64_t n, float eps,
                    int8_t* __restrict__ xq, float2* __restrict__ ds) {
    pdl_begin();
    const int64_t r = blockIdx.x;
    const float* xr = x + r * n;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += kNormThreads) ss = fmaf(xr[i], xr[i], ss);
    __shared__ float part[kNormThreads / kWarp];
    ss = warp_sum(ss);
    if (threadIdx.x % kWarp == 0) part[threadIdx.x / kWarp] = ss;
    __syncthreads();
    float total = 0.0f;
#pragma unroll
    for (int i = 0; i < kNormThreads / kWarp; ++i) total += part[i];
    const float inv = rsqrtf(total / float(n) + eps);
    float* yr = y + r * n;
    for (int64_t i = threadIdx.x; i < n; i += kNormThreads) {
        const float v = xr[i] * inv * weight[i];
        yr[i] = v;
        if (xq) quantize_q8_block(v, threadIdx.x % kWarp, (r * n + i) / 32, xq, ds); // n % 32 == 0: whole warps
    }
}

constexpr int kMaxRopePairs = 128; // head_dim <= 256 (checked at engine init)

// Grid (token, group of kRopeHeads heads of the q heads then the k heads): a single block per token ran the whole
// token's pairs on one SM (25 µs per layer at batch 1 on the 7B shape).
constexpr int kRopeHeads = 4;

__global__ void rope_store_kernel(RopeStoreArgs a) {
    pdl_begin();
    const int64_t t = blockIdx.x;
    const int64_t half = a.head_dim / 2, kv_dim = a.n_kv * a.head_dim;
    const int64_t h0 = int64_t(blockIdx.y) * kRopeHeads, h1 = min(h0 + kRopeHeads, a.n_heads + a.n_kv);
    const double p = double(a.pos[t]);
    // The angle depends on the pair index only: each (sin, cos) once per token, in double, shared by all heads.
    __shared__ double cs[kMaxRopePairs][2];
    for (int64_t i = threadIdx.x; i < half; i += blockDim.x) sincos(p * double(a.inv_freq[i]), &cs[i][0], &cs[i][1]);
    __syncthreads();
    // q heads first, then k heads: one pair (a, b) per thread step.
    const int64_t n_pairs = (h1 - h0) * half;
    for (int64_t j = threadIdx.x; j < n_pairs; j += blockDim.x) {
        const int64_t h = h0 + j / half, i = j % half;
        float* v =
            h < a.n_heads ? a.q + t * a.q_stride + h * a.head_dim : a.k + t * a.k_stride + (h - a.n_heads) * a.head_dim;
        const double s = cs[i][0], c = cs[i][1];
        const int64_t ia = a.neox ? i : 2 * i, ib = a.neox ? i + half : 2 * i + 1;
        const double x0 = v[ia], x1 = v[ib];
        v[ia] = float(x0 * c - x1 * s);
        v[ib] = float(x0 * s + x1 * c);
    }
    // This block's k heads (roped above) and their v rows into the cache.
    const int64_t k0 = max(h0, a.n_heads) - a.n_heads, k1 = h1 - a.n_heads;
    if (k1 <= k0) return;
    __syncthreads();
    const uint64_t row = (uint64_t(a.seq[t]) * uint64_t(a.n_ctx) + uint64_t(a.pos[t])) * uint64_t(kv_dim);
    for (int64_t d = k0 * a.head_dim + threadIdx.x; d < k1 * a.head_dim; d += blockDim.x) {
        a.k_cache[row + d] = __float2half_rn(a.k[t * a.k_stride + d]);
        a.v_cache[row + d] = __float2half_rn(a.v[t * a.v_stride + d]);
    }
}

// ---- attention: split-K over positions, online softmax per warp, merged per block then across splits ----
constexpr int kAttnWarps = 4;
constexpr int kAttnPos = 4; // positions per warp step
constexpr int kMaxHeadDim = 256;
constexpr int kHeadSlots = kMaxHeadDim / kWarp; // head dims held per lane

__global__ void __launch_bounds__(kAttnWarps* kWarp) attention_split_kernel(AttentionArgs a) {
    pdl_begin();
    const int split = blockIdx.x;
    const int64_t h = blockIdx.y, t = blockIdx.z;
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int64_t len = int64_t(a.pos[t]) + 1;
    const int64_t begin = int64_t(split) * a.split_len, end = min(len, begin + a.split_len);
    const int64_t hd = a.head_dim, kv_dim = a.n_kv * hd, kvh = h / (a.n_heads / a.n_kv);
    float* part = a.partial + ((t * a.n_heads + h) * a.n_split + split) * (hd + 2);
    if (begin >= end) { // nothing to see in this range: an empty partial
        if (threadIdx.x == 0) part[hd] = -FLT_MAX, part[hd + 1] = 0.0f;
        return;
    }
    float q[kHeadSlots], acc[kHeadSlots];
    const float* qr = a.q + t * a.q_stride + h * hd;
#pragma unroll
    for (int i = 0; i < kHeadSlots; ++i) {
        const int64_t d = lane + kWarp * i;
        q[i] = d < hd ? qr[d] * a.scale : 0.0f;
        acc[i] = 0.0f;
    }
    const uint64_t base = uint64_t(a.seq[t]) * uint64_t(a.n_ctx) * uint64_t(kv_dim) + uint64_t(kvh * hd);
    float m = -FLT_MAX, l = 0.0f;
    // kAttnPos consecutive positions per warp step: their K rows load together and their score reductions
    // interleave, instead of one position's load → reduce → softmax chain after another (the decode latency).
    for (int64_t p0 = begin + int64_t(warp) * kAttnPos; p0 < end; p0 += int64_t(kAttnWarps) * kAttnPos) {
        float s[kAttnPos];
#pragma unroll
        for (int j = 0; j < kAttnPos; ++j) {
            const int64_t p = min(p0 + j, end - 1);
            const __half* kr = a.k_cache + base + uint64_t(p) * kv_dim;
            s[j] = 0.0f;
#pragma unroll
            for (int i = 0; i < kHeadSlots; ++i) {
                const int64_t d = lane + kWarp * i;
                if (d < hd) s[j] = fmaf(q[i], __half2float(kr[d]), s[j]);
            }
        }
#pragma unroll
        for (int j = 0; j < kAttnPos; ++j) s[j] = warp_sum(s[j]);
        float m_new = m;
#pragma unroll
        for (int j = 0; j < kAttnPos; ++j)
            if (p0 + j < end) m_new = fmaxf(m_new, s[j]);
        const float corr = __expf(m - m_new);
        float e[kAttnPos];
        l *= corr;
#pragma unroll
        for (int j = 0; j < kAttnPos; ++j) {
            e[j] = p0 + j < end ? __expf(s[j] - m_new) : 0.0f;
            l += e[j];
        }
#pragma unroll
        for (int i = 0; i < kHeadSlots; ++i) {
            const int64_t d = lane + kWarp * i;
            float v = acc[i] * corr;
#pragma unroll
            for (int j = 0; j < kAttnPos; ++j) {
                const int64_t p = min(p0 + j, end - 1);
                if (d < hd) v += e[j] * __half2float(a.v_cache[base + uint64_t(p) * kv_dim + d]);
            }
            acc[i] = v;
        }
        m = m_new;
    }
    // Merge the warps of this block.
    __shared__ float sm[kAttnWarps], sl[kAttnWarps];
    __shared__ float sacc[kAttnWarps][kMaxHeadDim];
    if (lane == 0) sm[warp] = m, sl[warp] = l;
#pragma unroll
    for (int i = 0; i < kHeadSlots; ++i) {
        const int64_t d = lane + kWarp * i;
        if (d < hd) sacc[warp][d] = acc[i];
    }
    __syncthreads();
    float mx = -FLT_MAX;
#pragma unroll
    for (int w = 0; w < kAttnWarps; ++w) mx = fmaxf(mx, sm[w]);
    for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
        float v = 0.0f;
#pragma unroll
        for (int w = 0; w < kAttnWarps; ++w)
            if (sl[w] > 0.0f) v += sacc[w][d] * __expf(sm[w] - mx);
        part[d] = v;
    }
    if (threadIdx.x == 0) {
        float lt = 0.0f;
#pragma unroll
        for (int w = 0; w < kAttnWarps; ++w)
            if (sl[w] > 0.0f) lt += sl[w] * __expf(sm[w] - mx);
        part[hd] = mx, part[hd + 1] = lt;
    }
}

__global__ void attention_merge_kernel(AttentionArgs a) {
    pdl_begin();
    const int64_t h = blockIdx.x, t = blockIdx.y, hd = a.head_dim;
    const float* part = a.partial + (t * a.n_heads + h) * a.n_split * (hd + 2);
    float mx = -FLT_MAX;
    for (int s = 0; s < a.n_split; ++s)
        if (part[s * (hd + 2) + hd + 1] > 0.0f) mx = fmaxf(mx, part[s * (hd + 2) + hd]);
    float lt = 0.0f;
    for (int s = 0; s < a.n_split; ++s) {
        const float* ps = part + s * (hd + 2);
        if (ps[hd + 1] > 0.0f) lt += ps[hd + 1] * __expf(ps[hd] - mx);
    }
    float* out = a.out + (t * a.n_heads + h) * hd;
    for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
        float v = 0.0f;
        for (int s = 0; s < a.n_split; ++s) {
            const float* ps = part + s * (hd + 2);
            if (ps[hd + 1] > 0.0f) v += ps[d] * __expf(ps[hd] - mx);
        }
        out[d] = v / lt;
        if (a.out_q8)
            quantize_q8_block(v / lt, threadIdx.x % kWarp, ((t * a.n_heads + h) * hd + d) / 32, a.out_q8,
                              a.out_ds); // head_dim % 32 == 0: whole warps
    }
}

unsigned blocks_for(int64_t n, int threads) {
    return unsigned((n + threads - 1) / threads);
}

} // namespace

bool gpu_weight_type(DType dtype) {
    return with_type(dtype, 0, [](auto) {});
}

cudaError_t prepare_decoder(DType dtype) {
    if (dtype != DType::kNF4x64 && dtype != DType::kFP4x64) return cudaSuccess;
    float t[2][16];
    uint32_t c16[2][8];
    f4_code_tables(t, c16);
    const cudaError_t err = cudaMemcpyToSymbol(c_f4_tables, t, sizeof t);
    return err != cudaSuccess ? err : cudaMemcpyToSymbol(c_f4_code16, c16, sizeof c16);
}

cudaError_t launch_gemv(DType dtype, const uint8_t* w, uint64_t row_bytes, int64_t n_rows, int64_t n_cols,
                        const float* x, int64_t m, const float* bias, float* y, bool accumulate, cudaStream_t stream,
                        int layout) {
    if (m < 1 || m > kGemvMaxTokens || n_cols % 32 != 0) return cudaErrorInvalidValue;
    cudaError_t err = cudaErrorInvalidValue;
    with_type(dtype, layout, [&](auto q) {
        err = gemv_for<decltype(q)>(w, row_bytes, n_rows, n_cols, x, m, bias, y, accumulate, stream);
    });
    return err;
}

bool gemv_q8_type(DType dtype) {
    if (gemv_force_f32()) return false;
    bool q8 = false;
    with_type(dtype, 0, [&](auto q) { q8 = !std::is_void_v<typename Q8Of<decltype(q)>::type>; });
    return q8;
}

cudaError_t launch_quantize_q8(const float* x, int64_t m, int64_t n_cols, int8_t* xq, float2* ds, cudaStream_t stream) {
    if (m < 1 || n_cols % 32 != 0) return cudaErrorInvalidValue;
    const int64_t n_blocks = m * (n_cols / 32);
    return launch_pdl(quantize_q8_kernel, dim3(blocks_for(n_blocks * kWarp, 256)), dim3(256), stream, x, n_blocks, xq,
                      ds);
}

cudaError_t launch_gemv_q8(DType dtype, const uint8_t* w, uint64_t row_bytes, int64_t n_rows, int64_t n_cols,
                           const int8_t* xq, const float2* ds, int64_t m, const float* bias, float* y, bool accumulate,
                           cudaStream_t stream, int layout) {
    if (m < 1 || m > kGemvMaxTokens || n_cols % 32 != 0) return cudaErrorInvalidValue;
    cudaError_t err = cudaErrorInvalidValue;
    with_type(dtype, layout, [&](auto q) {
        using Q8 = typename Q8Of<decltype(q)>::type;
        if constexpr (!std::is_void_v<Q8>) {
            const int mi = int(m), a = accumulate ? 1 : 0;
            if (m == 1)
                launch_gemv_q8_mt<Q8, 1>(w, row_bytes, n_rows, n_cols, xq, ds, mi, bias, y, a, stream);
            else if (m == 2)
                launch_gemv_q8_mt<Q8, 2>(w, row_bytes, n_rows, n_cols, xq, ds, mi, bias, y, a, stream);
            else if (m <= 4)
                launch_gemv_q8_mt<Q8, 4>(w, row_bytes, n_rows, n_cols, xq, ds, mi, bias, y, a, stream);
            else
                launch_gemv_q8_mt<Q8, 8>(w, row_bytes, n_rows, n_cols, xq, ds, mi, bias, y, a, stream);
            err = cudaGetLastError();
        }
    });
    return err;
}

cudaError_t launch_dequant_matrix(DType dtype, const uint8_t* w, uint64_t row_bytes, int64_t n_rows, int64_t n_cols,
                                  void* out, bool to_bf16, cudaStream_t stream, int layout) {
    if (n_cols % 32 != 0) return cudaErrorInvalidValue;
    const int64_t total = n_rows * (n_cols / 32);
    bool known = with_type(dtype, layout, [&](auto q) {
        using Q = decltype(q);
        if (to_bf16)
            dequant_matrix_kernel<Q, true>
                <<<blocks_for(total, 256), 256, 0, stream>>>(w, row_bytes, n_rows, n_cols, out);
        else
            dequant_matrix_kernel<Q, false>
                <<<blocks_for(total, 256), 256, 0, stream>>>(w, row_bytes, n_rows, n_cols, out);
    });
    return known ? cudaGetLastError() : cudaErrorInvalidValue;
}

cudaError_t launch_embed(DType dtype, const uint8_t* w, uint64_t row_bytes, int64_t n_cols, const int32_t* token,
                         int64_t n, float* hidden, cudaStream_t stream, int layout) {
    if (n_cols % 32 != 0) return cudaErrorInvalidValue;
    bool known = with_type(dtype, layout, [&](auto q) {
        embed_kernel<decltype(q)><<<unsigned(n), 128, 0, stream>>>(w, row_bytes, n_cols, token, hidden);
    });
    return known ? cudaGetLastError() : cudaErrorInvalidValue;
}

cudaError_t launch_to_half(const float* x, __half* y, int64_t n, cudaStream_t stream) {
    to_half_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(x, y, n);
    return cudaGetLastError();
}

cudaError_t launch_to_bf16(const float* x, __nv_bfloat16* y, int64_t n, cudaStream_t stream) {
    to_bf16_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(x, y, n);
    return cudaGetLastError();
}

cudaError_t launch_add_bias(float* y, const float* bias, int64_t n_rows, int64_t n, cudaStream_t stream) {
    add_bias_kernel<<<blocks_for(n_rows * n, 256), 256, 0, stream>>>(y, bias, n_rows * n, n);
    return cudaGetLastError();
}

cudaError_t launch_rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps,
                            cudaStream_t stream, int8_t* xq, float2* ds) {
    if (xq && n % 32 != 0) return cudaErrorInvalidValue;
    return launch_pdl(rms_norm_kernel, dim3(unsigned(n_rows)), dim3(kNormThreads), stream, x, weight, y, n, eps, xq,
                      ds);
}

cudaError_t launch_silu_mul(const float* gate, int64_t gate_stride, const float* up, int64_t up_stride, float* out,
                            int64_t n_rows, int64_t n, cudaStream_t stream, int8_t* xq, float2* ds) {
    if (xq && n % 32 != 0) return cudaErrorInvalidValue;
    return launch_pdl(silu_mul_kernel, dim3(blocks_for(n_rows * n, 256)), dim3(256), stream, gate, gate_stride, up,
                      up_stride, out, n_rows, n, xq, ds);
}

cudaError_t launch_gather_rows(const float* src, const int32_t* rows, int64_t n_out, int64_t n, float* dst,
                               cudaStream_t stream) {
    return launch_pdl(gather_rows_kernel, dim3(unsigned(n_out)), dim3(256), stream, src, rows, n, dst);
}

cudaError_t launch_gather_cols(const float* x, int64_t m, int64_t k, const int32_t* perm, float* y,
                               cudaStream_t stream) {
    if (m < 1 || k < 1 || m > 65535) return cudaErrorInvalidValue;
    return launch_pdl(gather_cols_kernel, dim3(unsigned(std::min<int64_t>((k + 255) / 256, 64)), unsigned(m)),
                      dim3(256), stream, x, k, perm, y);
}

cudaError_t launch_rope_store(const RopeStoreArgs& a, cudaStream_t stream) {
    if (a.head_dim > 2 * kMaxRopePairs) return cudaErrorInvalidValue;
    const dim3 grid(unsigned(a.n), unsigned((a.n_heads + a.n_kv + kRopeHeads - 1) / kRopeHeads));
    return launch_pdl(rope_store_kernel, grid, dim3(128), stream, a);
}

void attention_splits(int64_t n_ctx, int& n_split, int& split_len, bool decode) {
    // Decode steps (few query rows) cut the positions finer so that more blocks share one head's cache rows.
    const int64_t kLen = decode ? 64 : 256, kMaxSplits = 64;
    int64_t len = kLen;
    if ((n_ctx + len - 1) / len > kMaxSplits) len = (n_ctx + kMaxSplits - 1) / kMaxSplits;
    split_len = int(len);
    n_split = int(std::max<int64_t>(1, (n_ctx + len - 1) / len));
}

cudaError_t launch_attention(const AttentionArgs& a, cudaStream_t stream) {
    if (a.head_dim > kMaxHeadDim || a.n_kv < 1 || a.n_heads % a.n_kv != 0 || (a.out_q8 && a.head_dim % 32 != 0))
        return cudaErrorInvalidValue;
    const dim3 grid(unsigned(a.n_split), unsigned(a.n_heads), unsigned(a.n));
    if (cudaError_t e = launch_pdl(attention_split_kernel, grid, dim3(kAttnWarps * kWarp), stream, a); e != cudaSuccess)
        return e;
    return launch_pdl(attention_merge_kernel, dim3(unsigned(a.n_heads), unsigned(a.n)), dim3(128), stream, a);
}

} // namespace lowbit::kernel::cuda::engine
