// SPDX-License-Identifier: MIT
// LLM.int8 on the device (launch_int8_decomp, gpu_int8.cuh): kernel/ref/matmul_int8_decomp's arithmetic. Default:
// three launches (outlier column mask, per-token int8 rows, one warp per weight row with the mask checked in the
// loop). LOWBIT_INT8_GEMV=list, not yet run on a GPU: two launches for decode (m <= 8) — one block finds the outlier
// columns (their ascending list), quantizes the token rows to int8 and writes their amax; then the GEMV: two weight
// rows per warp, 16-byte loads several in flight, dp4a with integer accumulation, and the outlier columns in f32 from
// the list after the integer pass (the weight row is in cache then). More tokens: one more launch for the outlier mask
// over all of them, then the same two kernels per group of 8 tokens.
#include "kernel/cuda/engine/gpu_int8.cuh"

#include <cstdlib>
#include <string>

namespace lowbit::kernel::cuda::engine {
namespace {

constexpr int kGroupTokens = 8;   // tokens per prep block and per GEMV launch
constexpr int kPrepThreads = 512; // one prep block per token group
constexpr int kWarps = 8;         // GEMV: warps per block
constexpr int kRowsPerWarp = 2;
constexpr float kInv127 = 7.874015718698502e-3f, kInv127Sq = 1.0f / (127.0f * 127.0f);

// mask[j] = 1 when some token has |x[t, j]| >= threshold (the default path; the list path when m > kGroupTokens).
__global__ void int8_outlier_cols(const float* __restrict__ x, int64_t m, int64_t k, float threshold,
                                  uint8_t* __restrict__ mask) {
    const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= k) return;
    uint8_t o = 0;
    for (int64_t t = 0; t < m && !o; ++t) o = fabsf(x[t * k + j]) >= threshold;
    mask[j] = o;
}

// The outlier bits of columns 4g..4g+3 (bit e: column 4g+e): mask_in when given, else |x| >= threshold for one of the
// group's nt tokens (v), none when threshold <= 0.
__device__ __forceinline__ unsigned outlier_bits(const float4 (&v)[kGroupTokens], int nt, float threshold,
                                                 const uint8_t* __restrict__ mask_in, int64_t g) {
    if (mask_in) {
        const uchar4 mk = __ldg(reinterpret_cast<const uchar4*>(mask_in) + g);
        return unsigned(mk.x != 0) | unsigned(mk.y != 0) << 1 | unsigned(mk.z != 0) << 2 | unsigned(mk.w != 0) << 3;
    }
    unsigned bits = 0;
    if (threshold > 0.0f) {
#pragma unroll
        for (int t = 0; t < kGroupTokens; ++t) {
            if (t >= nt) break;
            bits |= unsigned(fabsf(v[t].x) >= threshold) | unsigned(fabsf(v[t].y) >= threshold) << 1 |
                    unsigned(fabsf(v[t].z) >= threshold) << 2 | unsigned(fabsf(v[t].w) >= threshold) << 3;
        }
    }
    return bits;
}

__device__ __forceinline__ void load_group(const float* __restrict__ x, int64_t k, int64_t t0, int nt, int64_t g,
                                           float4 (&v)[kGroupTokens]) {
#pragma unroll
    for (int t = 0; t < kGroupTokens; ++t)
        if (t < nt) v[t] = __ldg(reinterpret_cast<const float4*>(x + (t0 + t) * k) + g);
}

// Tokens [8·blockIdx.x, +8) of x [m, k]: amax over the non-outlier columns per token, xq = rint(x · (127 / amax))
// with the outlier columns 0 — the reference's float expressions (IEEE division and product, round half to even).
// Block 0 also writes the outlier columns in ascending order: outl[0] = their count, outl[1..] the columns.
__global__ void __launch_bounds__(kPrepThreads)
    int8_prep(const float* __restrict__ x, int64_t m, int64_t k, float threshold, const uint8_t* __restrict__ mask_in,
              int8_t* __restrict__ xq, float* __restrict__ amax_out, int32_t* __restrict__ outl) {
    const int64_t t0 = int64_t(blockIdx.x) * kGroupTokens;
    const int nt = int(m - t0 < kGroupTokens ? m - t0 : kGroupTokens);
    const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
    const int64_t n4 = k / 4;
    const bool list = blockIdx.x == 0;
    __shared__ int s_scan[32];
    __shared__ float s_amax[kGroupTokens][32];
    float am[kGroupTokens];
#pragma unroll
    for (int t = 0; t < kGroupTokens; ++t) am[t] = 0.0f;
    int listed = 0;
    for (int64_t g0 = 0; g0 < n4; g0 += kPrepThreads) {
        const int64_t g = g0 + tid;
        unsigned bits = 0;
        if (g < n4) {
            float4 v[kGroupTokens];
            load_group(x, k, t0, nt, g, v);
            bits = outlier_bits(v, nt, threshold, mask_in, g);
#pragma unroll
            for (int t = 0; t < kGroupTokens; ++t) {
                if (t >= nt) break;
                if (!(bits & 1u)) am[t] = fmaxf(am[t], fabsf(v[t].x));
                if (!(bits & 2u)) am[t] = fmaxf(am[t], fabsf(v[t].y));
                if (!(bits & 4u)) am[t] = fmaxf(am[t], fabsf(v[t].z));
                if (!(bits & 8u)) am[t] = fmaxf(am[t], fabsf(v[t].w));
            }
        }
        if (list) { // block-wide exclusive scan of the per-thread counts: the columns go out in ascending order
            const int cnt = __popc(bits);
            int incl = cnt;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const int n = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += n;
            }
            if (lane == 31) s_scan[warp] = incl;
            __syncthreads();
            if (warp == 0) {
                int w = lane < kPrepThreads / 32 ? s_scan[lane] : 0;
#pragma unroll
                for (int o = 1; o < 32; o <<= 1) {
                    const int n = __shfl_up_sync(0xffffffffu, w, o);
                    if (lane >= o) w += n;
                }
                s_scan[lane] = w;
            }
            __syncthreads();
            int at = listed + (warp ? s_scan[warp - 1] : 0) + incl - cnt;
            for (int e = 0; e < 4; ++e)
                if (bits >> e & 1u) outl[1 + at++] = int32_t(4 * g + e);
            listed += s_scan[31];
            __syncthreads(); // s_scan is rewritten by the next round
        }
    }
    if (list && tid == 0) outl[0] = listed;
#pragma unroll
    for (int t = 0; t < kGroupTokens; ++t) {
        float a = am[t];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, o));
        if (lane == 0) s_amax[t][warp] = a;
    }
    __syncthreads();
    if (warp < kGroupTokens) {
        float a = lane < kPrepThreads / 32 ? s_amax[warp][lane] : 0.0f;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, o));
        __syncwarp();
        if (lane == 0) s_amax[warp][0] = a;
    }
    __syncthreads();
#pragma unroll
    for (int t = 0; t < kGroupTokens; ++t) am[t] = s_amax[t][0];
    if (tid < nt) amax_out[t0 + tid] = s_amax[tid][0];
    for (int64_t g = tid; g < n4; g += kPrepThreads) {
        float4 v[kGroupTokens];
        load_group(x, k, t0, nt, g, v);
        const unsigned bits = outlier_bits(v, nt, threshold, mask_in, g);
#pragma unroll
        for (int t = 0; t < kGroupTokens; ++t) {
            if (t >= nt) break;
            const float inv = __fdiv_rn(127.0f, am[t]);
            auto q = [&](float f, unsigned bit) {
                return (bits & bit) || !(am[t] > 0.0f) ? (signed char)0
                                                       : (signed char)__float2int_rn(__fmul_rn(f, inv));
            };
            reinterpret_cast<char4*>(xq + (t0 + t) * k)[g] =
                make_char4(q(v[t].x, 1u), q(v[t].y, 2u), q(v[t].z, 4u), q(v[t].w, 8u));
        }
    }
}

__device__ __forceinline__ int dot16(const uint4& w, const uint4& x, int s) {
    s = __dp4a(int(w.x), int(x.x), s);
    s = __dp4a(int(w.y), int(x.y), s);
    s = __dp4a(int(w.z), int(x.z), s);
    return __dp4a(int(w.w), int(x.w), s);
}

// ---- The measured default (H100, 2026-12-07: 0.97x / 1.12x fp16 cuBLAS at m = 1): column mask, per-token rows,
// one warp per weight row with the mask checked in the loop. ----

constexpr int kMaskRowsPerBlock = 8; // one warp per weight row

// Per token row: amax over the non-outlier columns, xq = rint(x · (127 / amax)) (outliers 0) — the reference's
// float expressions (IEEE division and product, round half to even).
__global__ void int8_quantize_rows(const float* __restrict__ x, int64_t k, const uint8_t* __restrict__ mask,
                                   int8_t* __restrict__ xq, float* __restrict__ amax_out) {
    const int64_t t = blockIdx.x;
    const float* xr = x + t * k;
    float amax = 0.0f;
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x)
        if (!mask || !mask[j]) amax = fmaxf(amax, fabsf(xr[j]));
    __shared__ float red[32];
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = amax;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < blockDim.x / 32 ? red[threadIdx.x] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (threadIdx.x == 0) red[0] = v;
    }
    __syncthreads();
    amax = red[0];
    if (threadIdx.x == 0) amax_out[t] = amax;
    const float inv = __fdiv_rn(127.0f, amax);
    int8_t* q = xq + t * k;
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
        const float v = mask && mask[j] ? 0.0f : xr[j];
        q[j] = amax > 0.0f ? int8_t(__float2int_rn(__fmul_rn(v, inv))) : int8_t(0);
    }
}

// y[t, r] (= or +=) Σ_j xq[t, j]·w[r, j] · (amax[t]·scb[r]) / 127² + Σ_{outlier j} x[t, j]·(w[r, j]·scb[r] / 127)
// (+ bias[r]).
__global__ void __launch_bounds__(32 * kMaskRowsPerBlock)
    int8_gemv_mask(const int8_t* __restrict__ w, const float* __restrict__ scb, int64_t n_rows, int64_t k,
                   const float* __restrict__ x, const int8_t* __restrict__ xq, const float* __restrict__ amax,
                   const uint8_t* __restrict__ mask, int64_t m, const float* __restrict__ bias, float* __restrict__ y,
                   bool accumulate) {
    const int lane = threadIdx.x & 31;
    const int64_t r = int64_t(blockIdx.x) * kMaskRowsPerBlock + (threadIdx.x >> 5);
    if (r >= n_rows) return;
    const int8_t* wr = w + r * k;
    const float s = scb[r];
    for (int64_t t0 = 0; t0 < m; t0 += kGroupTokens) {
        const int nt = int(m - t0 < kGroupTokens ? m - t0 : kGroupTokens);
        int acc[kGroupTokens] = {};
        float fsum[kGroupTokens] = {};
        for (int64_t c = int64_t(lane) * 16; c < k; c += 32 * 16) {
            const uint4 wv = __ldg(reinterpret_cast<const uint4*>(wr + c));
#pragma unroll
            for (int t = 0; t < kGroupTokens; ++t)
                if (t < nt) acc[t] = dot16(wv, __ldg(reinterpret_cast<const uint4*>(xq + (t0 + t) * k + c)), acc[t]);
            if (mask) {
                const uint4 mv = __ldg(reinterpret_cast<const uint4*>(mask + c));
                if (mv.x | mv.y | mv.z | mv.w) {
                    const int8_t* wb = reinterpret_cast<const int8_t*>(&wv);
                    for (int e = 0; e < 16; ++e) {
                        if (!mask[c + e]) continue;
                        const float wf = __fmul_rn(__fmul_rn(float(wb[e]), s), kInv127);
                        for (int t = 0; t < nt; ++t)
                            fsum[t] = __fadd_rn(fsum[t], __fmul_rn(x[(t0 + t) * k + c + e], wf));
                    }
                }
            }
        }
#pragma unroll
        for (int t = 0; t < kGroupTokens; ++t) {
            for (int o = 16; o > 0; o >>= 1) {
                acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], o);
                fsum[t] += __shfl_xor_sync(0xffffffffu, fsum[t], o);
            }
        }
        if (lane < nt) {
            // Lane t writes token t (the sums are the same in every lane after the butterfly).
            float out = 0.0f;
#pragma unroll
            for (int t = 0; t < kGroupTokens; ++t)
                if (t == lane) out = float(acc[t]) * (amax[t0 + t] * s) * kInv127Sq + fsum[t];
            if (bias) out += bias[r];
            float* dst = y + (t0 + lane) * n_rows + r;
            *dst = accumulate ? *dst + out : out;
        }
    }
}

// ---- LOWBIT_INT8_GEMV=list (opt-in until it has run on a GPU): the prep block and the list GEMV. ----

// Tokens [t0, t0 + nt), nt <= MT: y[t, r] (= or +=) Σ_j xq[t, j]·w[r, j] · (amax[t]·scb[r]) / 127²
// + Σ_{outlier j} x[t, j]·(w[r, j]·scb[r] / 127) (+ bias[r]). U 16-byte loads per row in flight per lane.
template <int MT>
__global__ void __launch_bounds__(kWarps * 32)
    int8_gemv(const int8_t* __restrict__ w, const float* __restrict__ scb, int64_t n_rows, int64_t k,
              const float* __restrict__ x, const int8_t* __restrict__ xq, const float* __restrict__ amax,
              const int32_t* __restrict__ outl, int64_t t0, int nt, const float* __restrict__ bias,
              float* __restrict__ y, int accumulate) {
    constexpr int R = kRowsPerWarp, U = MT == 1 ? 4 : MT == 2 ? 2 : 1;
    const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5;
    const int64_t row0 = (int64_t(blockIdx.x) * kWarps + warp) * R;
    if (row0 >= n_rows) return;
    const int64_t n16 = k / 16;
    const uint4* wr[R];
    float s[R];
#pragma unroll
    for (int r = 0; r < R; ++r) { // clamped: loads stay in bounds, the row is not written
        const int64_t row = row0 + r < n_rows ? row0 + r : n_rows - 1;
        wr[r] = reinterpret_cast<const uint4*>(w + row * k);
        s[r] = scb[row];
    }
    int acc[R][MT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < MT; ++t) acc[r][t] = 0;
    for (int64_t base = lane; base < n16; base += 32 * U) {
        uint4 wv[U][R];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int64_t c = base + 32 * u < n16 ? base + 32 * u : n16 - 1;
#pragma unroll
            for (int r = 0; r < R; ++r) wv[u][r] = __ldg(wr[r] + c);
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int64_t c = base + 32 * u;
            if (c >= n16) break;
#pragma unroll
            for (int t = 0; t < MT; ++t) {
                if (t >= nt) break;
                const uint4 xv = __ldg(reinterpret_cast<const uint4*>(xq + (t0 + t) * k) + c);
#pragma unroll
                for (int r = 0; r < R; ++r) acc[r][t] = dot16(wv[u][r], xv, acc[r][t]);
            }
        }
    }
    float fs[R][MT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < MT; ++t) fs[r][t] = 0.0f;
    const int n_out = __ldg(outl);
    for (int o = lane; o < n_out; o += 32) {
        const int64_t j = __ldg(outl + 1 + o);
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const float wf = __fmul_rn(__fmul_rn(float(reinterpret_cast<const int8_t*>(wr[r])[j]), s[r]), kInv127);
#pragma unroll
            for (int t = 0; t < MT; ++t) {
                if (t >= nt) break;
                fs[r][t] = __fadd_rn(fs[r][t], __fmul_rn(__ldg(x + (t0 + t) * k + j), wf));
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < MT; ++t) {
            int a = acc[r][t];
            float f = fs[r][t];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) {
                a += __shfl_xor_sync(0xffffffffu, a, o);
                f += __shfl_xor_sync(0xffffffffu, f, o);
            }
            const int64_t row = row0 + r;
            if (lane == r * MT + t && t < nt && row < n_rows) { // the sums are in every lane after the butterfly
                float out = float(a) * (amax[t0 + t] * s[r]) * kInv127Sq + f;
                if (bias) out += bias[row];
                float* dst = y + (t0 + t) * n_rows + row;
                *dst = accumulate ? *dst + out : out;
            }
        }
}

template <int MT>
void launch_gemv(const int8_t* w, const float* scb, int64_t n_rows, int64_t k, const float* x, const int8_t* xq,
                 const float* amax, const int32_t* outl, int64_t t0, int nt, const float* bias, float* y,
                 bool accumulate, cudaStream_t stream) {
    constexpr int64_t per_block = int64_t(kWarps) * kRowsPerWarp;
    int8_gemv<MT><<<unsigned((n_rows + per_block - 1) / per_block), kWarps * 32, 0, stream>>>(
        w, scb, n_rows, k, x, xq, amax, outl, t0, nt, bias, y, accumulate ? 1 : 0);
}

// LOWBIT_INT8_GEMV=list (read once) selects the outlier-list path below; the default is the measured mask path.
bool int8_list_path() {
    static const bool on = [] {
        const char* e = std::getenv("LOWBIT_INT8_GEMV");
        return e && std::string(e) == "list";
    }();
    return on;
}

} // namespace

cudaError_t launch_int8_decomp(const int8_t* w, const float* scb, int64_t n_rows, int64_t n_cols, float threshold,
                               const float* x, int64_t m, const float* bias, float* y, bool accumulate, uint8_t* mask,
                               int32_t* outl, int8_t* xq, float* amax, cudaStream_t stream) {
    if (m < 1 || n_rows < 1 || n_cols < 1 || n_cols % 16 != 0) return cudaErrorInvalidValue;
    if (!int8_list_path()) {
        const bool outliers = threshold > 0.0f;
        if (outliers)
            int8_outlier_cols<<<unsigned((n_cols + 255) / 256), 256, 0, stream>>>(x, m, n_cols, threshold, mask);
        int8_quantize_rows<<<unsigned(m), 256, 0, stream>>>(x, n_cols, outliers ? mask : nullptr, xq, amax);
        int8_gemv_mask<<<unsigned((n_rows + kMaskRowsPerBlock - 1) / kMaskRowsPerBlock), 32 * kMaskRowsPerBlock, 0,
                         stream>>>(w, scb, n_rows, n_cols, x, xq, amax, outliers ? mask : nullptr, m, bias, y,
                                   accumulate);
        return cudaGetLastError();
    }
    const bool many = m > kGroupTokens;
    if (many && threshold > 0.0f)
        int8_outlier_cols<<<unsigned((n_cols + 255) / 256), 256, 0, stream>>>(x, m, n_cols, threshold, mask);
    int8_prep<<<unsigned((m + kGroupTokens - 1) / kGroupTokens), kPrepThreads, 0, stream>>>(
        x, m, n_cols, many ? 0.0f : threshold, many && threshold > 0.0f ? mask : nullptr, xq, amax, outl);
    for (int64_t t0 = 0; t0 < m; t0 += kGroupTokens) {
        const int nt = int(m - t0 < kGroupTokens ? m - t0 : kGroupTokens);
        if (nt == 1)
            launch_gemv<1>(w, scb, n_rows, n_cols, x, xq, amax, outl, t0, nt, bias, y, accumulate, stream);
        else if (nt == 2)
            launch_gemv<2>(w, scb, n_rows, n_cols, x, xq, amax, outl, t0, nt, bias, y, accumulate, stream);
        else if (nt <= 4)
            launch_gemv<4>(w, scb, n_rows, n_cols, x, xq, amax, outl, t0, nt, bias, y, accumulate, stream);
        else
            launch_gemv<8>(w, scb, n_rows, n_cols, x, xq, amax, outl, t0, nt, bias, y, accumulate, stream);
    }
    return cudaGetLastError();
}

} // namespace lowbit::kernel::cuda::engine
