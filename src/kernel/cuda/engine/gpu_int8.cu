// SPDX-License-Identifier: MIT
// LLM.int8 on the device (launch_int8_decomp, gpu_int8.cuh): kernel/ref/matmul_int8_decomp's arithmetic in three
// launches — outlier columns, per-token int8 quantization of the other columns, then one warp per weight row with
// dp4a over 16-byte loads (weights read once per 8 tokens) and the outlier columns in f32 in the same pass.
#include "kernel/cuda/engine/gpu_int8.cuh"

namespace lowbit::kernel::cuda::engine {
namespace {

constexpr int kRowsPerBlock = 8; // one warp per weight row
constexpr int kTokensPerPass = 8;

// mask[j] = 1 when some token has |x[t, j]| >= threshold.
__global__ void int8_outlier_cols(const float* __restrict__ x, int64_t m, int64_t k, float threshold,
                                  uint8_t* __restrict__ mask) {
    const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= k) return;
    uint8_t o = 0;
    for (int64_t t = 0; t < m && !o; ++t) o = fabsf(x[t * k + j]) >= threshold;
    mask[j] = o;
}

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

__device__ __forceinline__ int dot16(const uint4& w, const uint4& x, int s) {
    s = __dp4a(int(w.x), int(x.x), s);
    s = __dp4a(int(w.y), int(x.y), s);
    s = __dp4a(int(w.z), int(x.z), s);
    return __dp4a(int(w.w), int(x.w), s);
}

// y[t, r] (= or +=) Σ_j xq[t, j]·w[r, j] · (amax[t]·scb[r]) / 127² + Σ_{outlier j} x[t, j]·(w[r, j]·scb[r] / 127)
// (+ bias[r]).
__global__ void __launch_bounds__(32 * kRowsPerBlock)
    int8_gemv(const int8_t* __restrict__ w, const float* __restrict__ scb, int64_t n_rows, int64_t k,
              const float* __restrict__ x, const int8_t* __restrict__ xq, const float* __restrict__ amax,
              const uint8_t* __restrict__ mask, int64_t m, const float* __restrict__ bias, float* __restrict__ y,
              bool accumulate) {
    const int lane = threadIdx.x & 31;
    const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
    if (r >= n_rows) return;
    const int8_t* wr = w + r * k;
    const float s = scb[r];
    constexpr float kInv127 = 7.874015718698502e-3f, kInv127Sq = 1.0f / (127.0f * 127.0f);
    for (int64_t t0 = 0; t0 < m; t0 += kTokensPerPass) {
        const int nt = int(m - t0 < kTokensPerPass ? m - t0 : kTokensPerPass);
        int acc[kTokensPerPass] = {};
        float fsum[kTokensPerPass] = {};
        for (int64_t c = int64_t(lane) * 16; c < k; c += 32 * 16) {
            const uint4 wv = __ldg(reinterpret_cast<const uint4*>(wr + c));
#pragma unroll
            for (int t = 0; t < kTokensPerPass; ++t)
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
        for (int t = 0; t < kTokensPerPass; ++t) {
            for (int o = 16; o > 0; o >>= 1) {
                acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], o);
                fsum[t] += __shfl_xor_sync(0xffffffffu, fsum[t], o);
            }
        }
        if (lane < nt) {
            // Lane t writes token t (the sums are the same in every lane after the butterfly).
            float out = 0.0f;
#pragma unroll
            for (int t = 0; t < kTokensPerPass; ++t)
                if (t == lane) out = float(acc[t]) * (amax[t0 + t] * s) * kInv127Sq + fsum[t];
            if (bias) out += bias[r];
            float* dst = y + (t0 + lane) * n_rows + r;
            *dst = accumulate ? *dst + out : out;
        }
    }
}

} // namespace

cudaError_t launch_int8_decomp(const int8_t* w, const float* scb, int64_t n_rows, int64_t n_cols, float threshold,
                               const float* x, int64_t m, const float* bias, float* y, bool accumulate, uint8_t* mask,
                               int8_t* xq, float* amax, cudaStream_t stream) {
    if (m < 1 || n_rows < 1 || n_cols < 1 || n_cols % 16 != 0) return cudaErrorInvalidValue;
    const bool outliers = threshold > 0.0f;
    if (outliers) int8_outlier_cols<<<unsigned((n_cols + 255) / 256), 256, 0, stream>>>(x, m, n_cols, threshold, mask);
    int8_quantize_rows<<<unsigned(m), 256, 0, stream>>>(x, n_cols, outliers ? mask : nullptr, xq, amax);
    int8_gemv<<<unsigned((n_rows + kRowsPerBlock - 1) / kRowsPerBlock), 32 * kRowsPerBlock, 0, stream>>>(
        w, scb, n_rows, n_cols, x, xq, amax, outliers ? mask : nullptr, m, bias, y, accumulate);
    return cudaGetLastError();
}

} // namespace lowbit::kernel::cuda::engine
