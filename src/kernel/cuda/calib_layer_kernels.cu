// SPDX-License-Identifier: MIT
// Kernels of the GPU decoder layer (contracts in calib_layer_kernels.cuh). All are memory-bound next to the
// GEMMs around them; they favour plain coalesced loops over tuning.
#include "kernel/cuda/calib_layer_kernels.cuh"

#include <cfloat>

namespace lowbit::kernel::cuda {
namespace {

constexpr int kRowThreads = 256;

unsigned grid_for(int64_t n, int threads) {
    int64_t blocks = (n + threads - 1) / threads;
    if (blocks > (int64_t(1) << 30)) blocks = int64_t(1) << 30; // kernels loop (grid-stride) beyond this
    return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

// Block-wide reduction over kRowThreads threads; `op` is a sum or a max. Every thread gets the result.
template <class Op> __device__ float block_reduce(float v, Op op, float* smem /* [32] */) {
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); // smem may still be read by a previous reduction
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    v = smem[0];
    for (int w = 1; w < kRowThreads / 32; ++w) v = op(v, smem[w]);
    return v;
}

struct SumOp {
    __device__ float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

__global__ void rms_norm_kernel(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y,
                                int64_t n, float eps) {
    __shared__ float smem[32];
    const float* xr = x + int64_t(blockIdx.x) * n;
    float* yr = y + int64_t(blockIdx.x) * n;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += kRowThreads) ss = fmaf(xr[i], xr[i], ss);
    ss = block_reduce(ss, SumOp{}, smem);
    const float inv = rsqrtf(ss / float(n) + eps);
    for (int64_t i = threadIdx.x; i < n; i += kRowThreads) yr[i] = xr[i] * inv * w[i];
}

__global__ void add_bias_kernel(float* y, int64_t ld, const float* __restrict__ bias, int64_t n_rows, int64_t n) {
    const int64_t total = n_rows * n;
    for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
         idx += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = idx / n, c = idx - r * n;
        y[r * ld + c] += bias[c];
    }
}

// One thread per (row, head, i < half).
__global__ void rope_neox_kernel(float* x, int64_t ld, int64_t n_rows, int64_t n_heads, int64_t head_dim,
                                 int64_t seqlen, const float2* __restrict__ cos_sin) {
    const int64_t half = head_dim / 2;
    const int64_t total = n_rows * n_heads * half;
    for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
         idx += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = idx % half;
        const int64_t rh = idx / half;
        const int64_t h = rh % n_heads, r = rh / n_heads;
        float* v = x + r * ld + h * head_dim;
        const float2 cs = cos_sin[(r % seqlen) * half + i];
        const float x0 = v[i], x1 = v[i + half];
        v[i] = x0 * cs.x - x1 * cs.y;
        v[i + half] = x0 * cs.y + x1 * cs.x;
    }
}

// One block per score row.
__global__ void causal_softmax_kernel(float* scores, int64_t L) {
    __shared__ float smem[32];
    const int64_t row = blockIdx.x;
    const int64_t i = row % L; // query position: sees keys 0..i
    float* s = scores + row * L;
    float mx = -FLT_MAX;
    for (int64_t j = threadIdx.x; j <= i; j += kRowThreads) mx = fmaxf(mx, s[j]);
    mx = block_reduce(mx, MaxOp{}, smem);
    float sum = 0.0f;
    for (int64_t j = threadIdx.x; j <= i; j += kRowThreads) sum += expf(s[j] - mx);
    sum = block_reduce(sum, SumOp{}, smem);
    const float inv = 1.0f / sum;
    for (int64_t j = threadIdx.x; j < L; j += kRowThreads) s[j] = j <= i ? expf(s[j] - mx) * inv : 0.0f;
}

__global__ void silu_mul_kernel(const float* __restrict__ gu, float* __restrict__ out, int64_t n_rows, int64_t ff) {
    const int64_t total = n_rows * ff;
    for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
         idx += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = idx / ff, c = idx - r * ff;
        const float g = gu[r * 2 * ff + c], u = gu[r * 2 * ff + ff + c];
        out[idx] = g / (1.0f + expf(-g)) * u;
    }
}

__global__ void widen_kernel(const float* __restrict__ x, double* __restrict__ y, int64_t n) {
    for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += int64_t(gridDim.x) * blockDim.x)
        y[idx] = double(x[idx]);
}

__global__ void symmetrize_kernel(const double* __restrict__ upper_cm, double* __restrict__ out, int64_t k,
                                  double scale) {
    const int64_t total = k * k;
    for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
         idx += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = idx / k, c = idx - r * k;
        // H[r][c] with r <= c is stored at r + c * k; otherwise use H[c][r].
        out[idx] = scale * (r <= c ? upper_cm[r + c * k] : upper_cm[c + r * k]);
    }
}

__global__ void split_tf32_kernel(const float* __restrict__ x, float* __restrict__ hi, float* __restrict__ lo,
                                  int64_t n) {
    for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
         idx += int64_t(gridDim.x) * blockDim.x) {
        const float v = x[idx];
        uint32_t u = __float_as_uint(v);
        u = (u + 0x0FFFu + ((u >> 13) & 1u)) & 0xFFFFE000u; // round to nearest even at mantissa bit 13
        const float h = __uint_as_float(u);
        hi[idx] = h;
        lo[idx] = v - h;
    }
}

// 32x32 tiles, 32x8 threads; tiles wholly below the diagonal are skipped. mᵀ goes through shared memory so both
// reads are coalesced (rows of a column-major tile are consecutive in memory).
__global__ void accumulate_split_kernel(double* __restrict__ sum, const float* __restrict__ c,
                                        const float* __restrict__ m, int64_t k) {
    if (blockIdx.x > blockIdx.y) return; // rows i of this tile all exceed its columns j
    __shared__ float t[32][33];
    const int64_t i0 = int64_t(blockIdx.x) * 32, j0 = int64_t(blockIdx.y) * 32;
    for (int q = threadIdx.y; q < 32; q += 8) { // t[i_local][j_local] = m[j + i k]
        const int64_t j = j0 + threadIdx.x, i = i0 + q;
        if (i < k && j < k) t[q][threadIdx.x] = m[j + i * k];
    }
    __syncthreads();
    for (int q = threadIdx.y; q < 32; q += 8) {
        const int64_t i = i0 + threadIdx.x, j = j0 + q;
        if (i < k && j < k && i <= j) {
            const int64_t idx = i + j * k;
            sum[idx] += double(c[idx]) + double(m[idx]) + double(t[threadIdx.x][q]);
        }
    }
}

} // namespace

cudaError_t launch_split_tf32(const float* x, float* hi, float* lo, int64_t n, cudaStream_t stream) {
    if (n <= 0) return cudaSuccess;
    split_tf32_kernel<<<grid_for(n, 256), 256, 0, stream>>>(x, hi, lo, n);
    return cudaGetLastError();
}

cudaError_t launch_accumulate_split(double* sum, const float* c, const float* m, int64_t k, cudaStream_t stream) {
    if (k <= 0) return cudaSuccess;
    const unsigned tiles = static_cast<unsigned>((k + 31) / 32);
    accumulate_split_kernel<<<dim3(tiles, tiles), dim3(32, 8), 0, stream>>>(sum, c, m, k);
    return cudaGetLastError();
}

cudaError_t launch_rms_norm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps,
                            cudaStream_t stream) {
    if (n_rows <= 0) return cudaSuccess;
    rms_norm_kernel<<<static_cast<unsigned>(n_rows), kRowThreads, 0, stream>>>(x, w, y, n, eps);
    return cudaGetLastError();
}

cudaError_t launch_add_bias(float* y, int64_t ld, const float* bias, int64_t n_rows, int64_t n, cudaStream_t stream) {
    if (n_rows * n <= 0) return cudaSuccess;
    add_bias_kernel<<<grid_for(n_rows * n, 256), 256, 0, stream>>>(y, ld, bias, n_rows, n);
    return cudaGetLastError();
}

cudaError_t launch_rope_neox(float* x, int64_t ld, int64_t n_rows, int64_t n_heads, int64_t head_dim, int64_t seqlen,
                             const float2* cos_sin, cudaStream_t stream) {
    const int64_t total = n_rows * n_heads * (head_dim / 2);
    if (total <= 0) return cudaSuccess;
    rope_neox_kernel<<<grid_for(total, 256), 256, 0, stream>>>(x, ld, n_rows, n_heads, head_dim, seqlen, cos_sin);
    return cudaGetLastError();
}

cudaError_t launch_causal_softmax(float* scores, int64_t n_mats, int64_t L, cudaStream_t stream) {
    if (n_mats * L <= 0) return cudaSuccess;
    causal_softmax_kernel<<<static_cast<unsigned>(n_mats * L), kRowThreads, 0, stream>>>(scores, L);
    return cudaGetLastError();
}

cudaError_t launch_silu_mul(const float* gu, float* out, int64_t n_rows, int64_t ff, cudaStream_t stream) {
    if (n_rows * ff <= 0) return cudaSuccess;
    silu_mul_kernel<<<grid_for(n_rows * ff, 256), 256, 0, stream>>>(gu, out, n_rows, ff);
    return cudaGetLastError();
}

cudaError_t launch_widen_f64(const float* x, double* y, int64_t n, cudaStream_t stream) {
    if (n <= 0) return cudaSuccess;
    widen_kernel<<<grid_for(n, 256), 256, 0, stream>>>(x, y, n);
    return cudaGetLastError();
}

cudaError_t launch_symmetrize_scale(const double* upper_cm, double* out, int64_t k, double scale, cudaStream_t stream) {
    if (k <= 0) return cudaSuccess;
    symmetrize_kernel<<<grid_for(k * k, 256), 256, 0, stream>>>(upper_cm, out, k, scale);
    return cudaGetLastError();
}

} // namespace lowbit::kernel::cuda
