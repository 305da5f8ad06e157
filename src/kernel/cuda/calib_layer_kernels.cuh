// SPDX-License-Identifier: MIT
// Element-wise and row-wise kernels of the GPU decoder layer (calib_layer.cu): RMSNorm, bias, RoPE, causal
// softmax, SiLU*mul and the Hessian helpers. All enqueue on `stream` and return the launch status (CUDA-only
// header). Matrices are row-major; `ld` is the distance between rows in elements.
#pragma once

#include <cstdint>
#include <cuda_runtime.h>

namespace lowbit::kernel::cuda {

// y[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) * w[:] for r < n_rows; x, y: [n_rows, n] contiguous.
cudaError_t launch_rms_norm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps,
                            cudaStream_t stream);

// y[r, c] += bias[c] for r < n_rows, c < n; y rows `ld` apart.
cudaError_t launch_add_bias(float* y, int64_t ld, const float* bias, int64_t n_rows, int64_t n, cudaStream_t stream);

// RoPE "rotate half" in place on x [n_rows, n_heads, head_dim] (rows `ld` apart): row r sits at position
// r % seqlen; pair (i, i + half) turns by cos_sin[pos * half + i] = (cos, sin) of pos * inv_freq[i].
cudaError_t launch_rope_neox(float* x, int64_t ld, int64_t n_rows, int64_t n_heads, int64_t head_dim, int64_t seqlen,
                             const float2* cos_sin, cudaStream_t stream);

// Causal softmax over scores [n_mats, L, L]: row i of each matrix keeps columns j <= i
// (p = exp(s - max) / Σ exp) and gets 0 beyond.
cudaError_t launch_causal_softmax(float* scores, int64_t n_mats, int64_t L, cudaStream_t stream);

// out[r, c] = silu(gu[r, c]) * gu[r, ff + c] for c < ff; gu: [n_rows, 2 * ff] (gate | up), out: [n_rows, ff].
cudaError_t launch_silu_mul(const float* gu, float* out, int64_t n_rows, int64_t ff, cudaStream_t stream);

// y[i] = double(x[i]) for i < n.
cudaError_t launch_widen_f64(const float* x, double* y, int64_t n, cudaStream_t stream);

// out [k, k] row-major full symmetric = scale * H, where `upper_cm` holds the upper triangle of H in column-major
// order (cuBLAS fill-mode upper): H[i][j] for i <= j at upper_cm[i + j * k].
cudaError_t launch_symmetrize_scale(const double* upper_cm, double* out, int64_t k, double scale, cudaStream_t stream);

// hi[i] = x[i] rounded to the nearest TF32 value (10 mantissa bits, ties to even), lo[i] = x[i] - hi[i] (exact).
cudaError_t launch_split_tf32(const float* x, float* hi, float* lo, int64_t n, cudaStream_t stream);

// For the upper triangle (i <= j) of column-major [k, k] matrices: sum[i + j k] += c[i + j k] + m[i + j k] +
// m[j + i k] (c = hiᵀhi, m = hiᵀlo of a split-TF32 Hessian block; m + mᵀ are the two cross terms).
cudaError_t launch_accumulate_split(double* sum, const float* c, const float* m, int64_t k, cudaStream_t stream);

} // namespace lowbit::kernel::cuda
