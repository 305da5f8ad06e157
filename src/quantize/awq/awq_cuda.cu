// SPDX-License-Identifier: MIT
// AWQ device steps (contract in awq_cuda.h). The group quantizer is one warp per (row, group): pass 1 reduces
// min / max with shuffles, pass 2 writes the outputs; its arithmetic uses __f*_rn intrinsics so nvcc cannot contract
// it into FMAs, and rintf (half to even) as std::nearbyint does on the host, so it reproduces pseudo_quantize bit
// for bit. Column sums run in row chunks of kRowsPerChunk into f64 partials, added in chunk order (deterministic).
#include "kernel/cuda/calib_layer_kernels.cuh"
#include "kernel/cuda/calib_layer_util.cuh"
#include "quantize/awq/awq_cuda.h"

#include <algorithm>
#include <cuda_fp16.h>
#include <string>

namespace lowbit::quantize::awq {
namespace {

using kernel::cuda::DeviceBuffer;

constexpr int kWarpsPerBlock = 8;
constexpr int64_t kRowsPerChunk = 256;
constexpr int kLossBlocks = 512;
constexpr uint64_t kClipBudget = uint64_t(512) << 20; // bytes of per-group GEMM outputs per batch

enum class PqMode { kSearch, kClip, kFinal };

struct PqArgs {
    const float* w = nullptr;
    float* out = nullptr;
    int64_t n_rows = 0, n_in = 0, g = 0;
    int bits = 4;
    bool zero_point = true;
    const float* s = nullptr; // kSearch: column scales (null: none)
    float shrink = 1.0f;      // kClip: clamp to max|w_group| * shrink, out = q - w
    uint8_t* codes = nullptr; // kFinal outputs (f16 scales)
    float* scales = nullptr;
    int32_t* zeros = nullptr;
};

__device__ inline float clampf(float v, float lo, float hi) {
    return v < lo ? lo : (hi < v ? hi : v); // std::clamp
}

template <PqMode M> __global__ void pq_kernel(PqArgs a) {
    const int64_t n_groups = a.n_in / a.g;
    const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = int(threadIdx.x & 31);
    if (warp >= a.n_rows * n_groups) return;
    const int64_t r = warp / n_groups, j = warp % n_groups, base = r * a.n_in + j * a.g;
    const float* w = a.w + base;
    const float* s = (M == PqMode::kSearch && a.s) ? a.s + j * a.g : nullptr;
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = lane; i < a.g; i += 32) {
        const float v = s ? __fmul_rn(w[i], s[i]) : w[i];
        lo = fminf(lo, v), hi = fmaxf(hi, v);
    }
    for (int off = 16; off > 0; off >>= 1) {
        lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, off));
        hi = fmaxf(hi, __shfl_xor_sync(0xffffffffu, hi, off));
    }
    float m = 0.0f; // kClip: the clamp bound
    if (M == PqMode::kClip) {
        m = __fmul_rn(fmaxf(fabsf(lo), fabsf(hi)), a.shrink);
        lo = clampf(lo, -m, m), hi = clampf(hi, -m, m); // clamp is monotone: min/max of the clamped values
    }
    float scale, zero, min_q, max_q;
    if (a.zero_point) {
        max_q = float((1 << a.bits) - 1), min_q = 0.0f;
        scale = __fdiv_rn(fmaxf(__fsub_rn(hi, lo), 1e-5f), max_q);
    } else {
        max_q = float((1 << (a.bits - 1)) - 1), min_q = -float(1 << (a.bits - 1));
        scale = __fdiv_rn(fmaxf(fmaxf(fabsf(lo), fabsf(hi)), 1e-5f), max_q);
    }
    if (M == PqMode::kFinal) {
        scale = __half2float(__float2half_rn(scale));
        if (!(scale > 0.0f)) scale = 5.9604644775390625e-8f; // 2^-24, as the CPU's f16_scale
    }
    zero = a.zero_point ? clampf(-rintf(__fdiv_rn(lo, scale)), 0.0f, max_q) : 0.0f;
    for (int64_t i = lane; i < a.g; i += 32) {
        float v = s ? __fmul_rn(w[i], s[i]) : w[i];
        if (M == PqMode::kClip) v = clampf(v, -m, m);
        const float q = a.zero_point ? clampf(__fadd_rn(rintf(__fdiv_rn(v, scale)), zero), 0.0f, max_q)
                                     : clampf(rintf(__fdiv_rn(v, scale)), min_q, max_q);
        const float dq = __fmul_rn(__fsub_rn(q, zero), scale);
        if (M == PqMode::kSearch) a.out[base + i] = s ? __fdiv_rn(dq, s[i]) : dq;
        if (M == PqMode::kClip) a.out[base + i] = __fsub_rn(dq, w[i]);
        if (M == PqMode::kFinal) {
            a.codes[base + i] = uint8_t(a.zero_point ? q : q - min_q);
            a.out[base + i] = dq;
        }
    }
    if (M == PqMode::kFinal && lane == 0) {
        a.scales[r * n_groups + j] = scale;
        a.zeros[r * n_groups + j] = a.zero_point ? int32_t(zero) : int32_t(-min_q);
    }
}

// amax[r, j] = max |w[r, j*g : (j+1)*g]|, one warp per group.
__global__ void group_amax_kernel(const float* w, float* amax, int64_t n_rows, int64_t n_in, int64_t g) {
    const int64_t n_groups = n_in / g;
    const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = int(threadIdx.x & 31);
    if (warp >= n_rows * n_groups) return;
    const float* p = w + (warp / n_groups) * n_in + (warp % n_groups) * g;
    float m = 0.0f;
    for (int64_t i = lane; i < g; i += 32) m = fmaxf(m, fabsf(p[i]));
    for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    if (lane == 0) amax[warp] = m;
}

// partial[chunk, c] = Σ over the chunk's rows of |x[r, c]| (amax null) or of |x[r, c]| * (1 / (amax[r, c/g] + 1e-6))
// in f32 per term (as weight_mean), f64 sums.
__global__ void col_abs_partial_kernel(const float* x, int64_t n_rows, int64_t n_cols, const float* amax, int64_t g,
                                       double* partial) {
    const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= n_cols) return;
    const int64_t r0 = int64_t(blockIdx.y) * kRowsPerChunk, r1 = min(n_rows, r0 + kRowsPerChunk);
    double sum = 0.0;
    for (int64_t r = r0; r < r1; ++r) {
        const float v = fabsf(x[r * n_cols + c]);
        if (amax) {
            const float inv = __fdiv_rn(1.0f, __fadd_rn(amax[r * (n_cols / g) + c / g], 1e-6f));
            sum += double(__fmul_rn(v, inv));
        } else {
            sum += double(v);
        }
    }
    partial[int64_t(blockIdx.y) * n_cols + c] = sum;
}

// acc[c] += Σ_k partial[k, c] for k in chunk order.
__global__ void col_finish_kernel(const double* partial, int64_t n_chunks, int64_t n_cols, double* acc) {
    const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= n_cols) return;
    double sum = acc[c];
    for (int64_t k = 0; k < n_chunks; ++k) sum += partial[k * n_cols + c];
    acc[c] = sum;
}

__global__ void sq_diff_partial_kernel(const float* a, const float* b, int64_t n, double* partial) {
    __shared__ double red[256];
    double sum = 0.0;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        const double d = double(a[i]) - double(b[i]);
        sum += d * d;
    }
    red[threadIdx.x] = sum;
    __syncthreads();
    for (int off = blockDim.x / 2; off > 0; off >>= 1) {
        if (int(threadIdx.x) < off) red[threadIdx.x] += red[threadIdx.x + off];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = red[0];
}

__global__ void sq_diff_finish_kernel(const double* partial, int n, double* acc) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) sum += partial[i];
    *acc += sum;
}

// w[i] times / divided by s[column] (by_row false) or s[row] (by_row true) of a row-major [*, n_cols] matrix.
__global__ void scale_kernel(float* w, int64_t n, int64_t n_cols, const float* s, bool by_row, bool divide) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float v = s[by_row ? i / n_cols : i % n_cols];
    w[i] = divide ? __fdiv_rn(w[i], v) : __fmul_rn(w[i], v);
}

// One shrink step of the clip search for groups [j0, j0 + nb): e[jj][t, r] are the GEMM outputs x_g · (q - w)_g.
// err = float(Σ_t e² / nt) (f64 sum); strictly smaller than min_err: remember max|w| * shrink.
__global__ void clip_update_kernel(const float* e, int64_t nt, int64_t n_out, int64_t n_groups, int64_t j0,
                                   const float* org_max, float shrink, float* min_err, float* best) {
    const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (r >= n_out) return;
    const int64_t jj = blockIdx.y, j = j0 + jj;
    const float* p = e + jj * nt * n_out + r;
    double sum = 0.0;
    for (int64_t t = 0; t < nt; ++t) {
        const double v = p[t * n_out];
        sum += v * v;
    }
    const float err = float(sum / double(nt));
    const int64_t k = r * n_groups + j;
    if (err < min_err[k]) min_err[k] = err, best[k] = __fmul_rn(org_max[k], shrink);
}

__global__ void clip_init_kernel(const float* org_max, float* min_err, float* best, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) min_err[i] = 1e9f, best[i] = org_max[i];
}

__global__ void apply_clip_kernel(float* w, int64_t n, int64_t n_in, int64_t g, const float* max_val) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float m = max_val[(i / n_in) * (n_in / g) + (i % n_in) / g];
    w[i] = clampf(w[i], -m, m);
}

unsigned blocks_for(int64_t n, int threads) {
    return unsigned((n + threads - 1) / threads);
}

class CudaAwq final : public AwqCuda {
  public:
    CudaAwq(bool tf32) : compute_(tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F) {}
    ~CudaAwq() override {
        if (blas_) cublasDestroy(blas_);
        if (own_stream_ && stream_) cudaStreamDestroy(stream_);
    }

    Status init(void* stream) {
        if (stream) {
            stream_ = static_cast<cudaStream_t>(stream);
        } else {
            CALIB_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "AwqCuda: cudaStreamCreate");
            own_stream_ = true;
        }
        CALIB_CUBLAS_TRY(cublasCreate(&blas_), "AwqCuda: cublasCreate");
        CALIB_CUBLAS_TRY(cublasSetStream(blas_, stream_), "AwqCuda: cublasSetStream");
        LOWBIT_TRY(loss_acc_.alloc(1, "AWQ loss accumulator"));
        LOWBIT_TRY(loss_partial_.alloc(kLossBlocks, "AWQ loss partial sums"));
        return reset_loss();
    }

    Status to_device(float* dst, const float* host, int64_t n) override {
        CALIB_CUDA_TRY(cudaMemcpyAsync(dst, host, sizeof(float) * size_t(n), cudaMemcpyHostToDevice, stream_),
                       "AwqCuda upload of " + std::to_string(n) + " floats");
        CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "AwqCuda upload");
        return ok_status();
    }
    Status to_host(float* host, const float* src, int64_t n) override {
        CALIB_CUDA_TRY(cudaMemcpyAsync(host, src, sizeof(float) * size_t(n), cudaMemcpyDeviceToHost, stream_),
                       "AwqCuda download of " + std::to_string(n) + " floats");
        CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "AwqCuda download");
        return ok_status();
    }
    Status copy(float* dst, const float* src, int64_t n) override {
        CALIB_CUDA_TRY(cudaMemcpyAsync(dst, src, sizeof(float) * size_t(n), cudaMemcpyDeviceToDevice, stream_),
                       "AwqCuda device copy of " + std::to_string(n) + " floats");
        return ok_status();
    }

    Status linear(const float* x, int64_t n, const float* w, int64_t n_out, int64_t k, const float* bias,
                  float* y) override {
        const float one = 1.0f, zero = 0.0f;
        CALIB_CUBLAS_TRY(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(n_out), int(n), int(k), &one, w, CUDA_R_32F,
                                      int(k), x, CUDA_R_32F, int(k), &zero, y, CUDA_R_32F, int(n_out), compute_,
                                      CUBLAS_GEMM_DEFAULT),
                         "AwqCuda linear [" + std::to_string(n) + " x " + std::to_string(k) + "] x [" +
                             std::to_string(k) + " x " + std::to_string(n_out) + "]");
        if (bias)
            CALIB_CUDA_TRY(kernel::cuda::launch_add_bias(y, n_out, bias, n, n_out, stream_), "AwqCuda linear bias");
        return ok_status();
    }

    Status silu_mul(const float* gu, float* out, int64_t n, int64_t ff) override {
        CALIB_CUDA_TRY(kernel::cuda::launch_silu_mul(gu, out, n, ff, stream_), "AwqCuda silu*mul");
        return ok_status();
    }

    Status reset_loss() override {
        CALIB_CUDA_TRY(cudaMemsetAsync(loss_acc_.get(), 0, sizeof(double), stream_), "AwqCuda reset loss");
        return ok_status();
    }
    Status add_sq_diff(const float* a, const float* b, int64_t n) override {
        if (n <= 0) return ok_status();
        sq_diff_partial_kernel<<<kLossBlocks, 256, 0, stream_>>>(a, b, n, loss_partial_.get());
        CALIB_LAUNCH_CHECK("awq sq_diff_partial");
        sq_diff_finish_kernel<<<1, 32, 0, stream_>>>(loss_partial_.get(), kLossBlocks, loss_acc_.get());
        CALIB_LAUNCH_CHECK("awq sq_diff_finish");
        return ok_status();
    }
    Result<double> loss() override {
        double v = 0;
        CALIB_CUDA_TRY(cudaMemcpyAsync(&v, loss_acc_.get(), sizeof(double), cudaMemcpyDeviceToHost, stream_),
                       "AwqCuda loss download");
        CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "AwqCuda loss");
        return v;
    }

    Result<std::vector<float>> channel_mean_abs(const float* x, int64_t n_tokens, int64_t k) override {
        LOWBIT_TRY(col_acc_.reserve(k, "AWQ column sums"));
        CALIB_CUDA_TRY(cudaMemsetAsync(col_acc_.get(), 0, sizeof(double) * size_t(k), stream_), "AwqCuda col sums");
        LOWBIT_TRY(add_col_sums(x, n_tokens, k, nullptr, 1));
        return col_means(k, n_tokens);
    }

    Result<std::vector<float>> weight_mean(const DeviceLinearRef* linears, int64_t n_linears, int64_t n_in,
                                           int64_t group_size) override {
        const int64_t g = group_size < 0 ? n_in : group_size;
        LOWBIT_TRY(col_acc_.reserve(n_in, "AWQ column sums"));
        CALIB_CUDA_TRY(cudaMemsetAsync(col_acc_.get(), 0, sizeof(double) * size_t(n_in), stream_), "AwqCuda col sums");
        int64_t rows = 0;
        for (int64_t i = 0; i < n_linears; ++i) {
            const DeviceLinearRef& l = linears[i];
            LOWBIT_TRY(amax_.reserve(l.n_out * (n_in / g), "AWQ group max"));
            LOWBIT_TRY(group_amax(l.w, l.n_out, n_in, g, amax_.get()));
            LOWBIT_TRY(add_col_sums(l.w, l.n_out, n_in, amax_.get(), g));
            rows += l.n_out;
        }
        return col_means(n_in, rows);
    }

    Status scaled_pseudo_quantize(const float* w, int64_t n_out, int64_t n_in, const float* s, float* out,
                                  const AwqOptions& o) override {
        PqArgs a = args(w, out, n_out, n_in, o);
        a.s = s;
        return launch_pq<PqMode::kSearch>(a, "awq pseudo_quantize");
    }

    Status scale_columns(float* w, int64_t n_rows, int64_t n_cols, const float* s, bool divide) override {
        return scale(w, n_rows, n_cols, s, false, divide);
    }
    Status scale_rows(float* w, int64_t n_rows, int64_t n_cols, const float* s, bool divide) override {
        return scale(w, n_rows, n_cols, s, true, divide);
    }

    Status clip(float* w, int64_t n_out, int64_t n_in, const float* x, int64_t n_tokens, const AwqOptions& o,
                std::vector<float>* max_val) override;
    Status quantize(float* w, int64_t n_out, int64_t n_in, const AwqOptions& o, GroupQuant& out) override;

    uint64_t workspace_bytes() const override {
        return loss_acc_.bytes() + loss_partial_.bytes() + col_acc_.bytes() + col_partial_.bytes() + amax_.bytes() +
               delta_.bytes() + xs_.bytes() + e_.bytes() + min_err_.bytes() + best_.bytes() + codes_.bytes() +
               scales_.bytes() + zeros_.bytes();
    }

  private:
    Status scale(float* w, int64_t n_rows, int64_t n_cols, const float* s, bool by_row, bool divide) {
        const int64_t n = n_rows * n_cols;
        if (n <= 0) return ok_status();
        scale_kernel<<<blocks_for(n, 256), 256, 0, stream_>>>(w, n, n_cols, s, by_row, divide);
        CALIB_LAUNCH_CHECK("awq scale");
        return ok_status();
    }
    PqArgs args(const float* w, float* out, int64_t n_out, int64_t n_in, const AwqOptions& o) const {
        PqArgs a;
        a.w = w, a.out = out, a.n_rows = n_out, a.n_in = n_in, a.g = o.group_size < 0 ? n_in : o.group_size;
        a.bits = o.bits, a.zero_point = o.zero_point;
        return a;
    }
    template <PqMode M> Status launch_pq(const PqArgs& a, const char* what) {
        const int64_t warps = a.n_rows * (a.n_in / a.g);
        if (warps <= 0) return ok_status();
        pq_kernel<M><<<blocks_for(warps, kWarpsPerBlock), kWarpsPerBlock * 32, 0, stream_>>>(a);
        CALIB_LAUNCH_CHECK(what);
        return ok_status();
    }
    Status group_amax(const float* w, int64_t n_rows, int64_t n_in, int64_t g, float* out) {
        const int64_t warps = n_rows * (n_in / g);
        group_amax_kernel<<<blocks_for(warps, kWarpsPerBlock), kWarpsPerBlock * 32, 0, stream_>>>(w, out, n_rows, n_in,
                                                                                                  g);
        CALIB_LAUNCH_CHECK("awq group_amax");
        return ok_status();
    }
    Status add_col_sums(const float* x, int64_t n_rows, int64_t n_cols, const float* amax, int64_t g) {
        const int64_t n_chunks = (n_rows + kRowsPerChunk - 1) / kRowsPerChunk;
        if (n_chunks == 0) return ok_status();
        LOWBIT_TRY(col_partial_.reserve(n_chunks * n_cols, "AWQ column partial sums"));
        const dim3 grid(blocks_for(n_cols, 256), unsigned(n_chunks));
        col_abs_partial_kernel<<<grid, 256, 0, stream_>>>(x, n_rows, n_cols, amax, g, col_partial_.get());
        CALIB_LAUNCH_CHECK("awq col_abs_partial");
        col_finish_kernel<<<blocks_for(n_cols, 256), 256, 0, stream_>>>(col_partial_.get(), n_chunks, n_cols,
                                                                        col_acc_.get());
        CALIB_LAUNCH_CHECK("awq col_finish");
        return ok_status();
    }
    Result<std::vector<float>> col_means(int64_t n_cols, int64_t n_rows) {
        std::vector<double> sums(static_cast<size_t>(n_cols));
        CALIB_CUDA_TRY(cudaMemcpyAsync(sums.data(), col_acc_.get(), sizeof(double) * size_t(n_cols),
                                       cudaMemcpyDeviceToHost, stream_),
                       "AwqCuda column sums download");
        CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "AwqCuda column sums");
        std::vector<float> m(size_t(n_cols), 0.0f);
        if (n_rows > 0)
            for (int64_t c = 0; c < n_cols; ++c) m[size_t(c)] = float(sums[size_t(c)] / double(n_rows));
        return m;
    }

    cublasComputeType_t compute_;
    cudaStream_t stream_ = nullptr;
    bool own_stream_ = false;
    cublasHandle_t blas_ = nullptr;
    DeviceBuffer<double> loss_acc_, loss_partial_, col_acc_, col_partial_;
    DeviceBuffer<float> amax_, delta_, xs_, e_, min_err_, best_, scales_;
    DeviceBuffer<uint8_t> codes_;
    DeviceBuffer<int32_t> zeros_;
};

Status CudaAwq::clip(float* w, int64_t n_out, int64_t n_in, const float* x, int64_t n_tokens, const AwqOptions& o,
                     std::vector<float>* max_val) {
    LOWBIT_TRY(validate(o, n_in));
    if (n_tokens < 1) return make_error(ErrorCode::kBadInput, "awq clip search needs at least one token");
    const int64_t g = o.group_size < 0 ? n_in : o.group_size, n_groups = n_in / g, n = n_out * n_groups;
    const int64_t step = std::max<int64_t>(1, n_tokens / o.n_sample_token);
    const int64_t nt = (n_tokens + step - 1) / step; // python's x[::step]
    const int n_shrink = int(o.max_shrink * o.n_grid);
    LOWBIT_TRY(xs_.reserve(nt * n_in, "AWQ clip sampled inputs"));
    LOWBIT_TRY(delta_.reserve(n_out * n_in, "AWQ clip deltas"));
    LOWBIT_TRY(amax_.reserve(n, "AWQ clip group max"));
    LOWBIT_TRY(min_err_.reserve(n, "AWQ clip errors"));
    LOWBIT_TRY(best_.reserve(n, "AWQ clip bounds"));
    const int64_t per_group = nt * n_out * int64_t(sizeof(float));
    const int64_t batch = std::clamp<int64_t>(int64_t(kClipBudget) / std::max<int64_t>(1, per_group), 1, n_groups);
    LOWBIT_TRY(e_.reserve(batch * nt * n_out, "AWQ clip GEMM outputs"));
    CALIB_CUDA_TRY(cudaMemcpy2DAsync(xs_.get(), sizeof(float) * size_t(n_in), x, sizeof(float) * size_t(step * n_in),
                                     sizeof(float) * size_t(n_in), size_t(nt), cudaMemcpyDeviceToDevice, stream_),
                   "AwqCuda clip: token sampling");
    LOWBIT_TRY(group_amax(w, n_out, n_in, g, amax_.get()));
    clip_init_kernel<<<blocks_for(n, 256), 256, 0, stream_>>>(amax_.get(), min_err_.get(), best_.get(), n);
    CALIB_LAUNCH_CHECK("awq clip_init");
    const float one = 1.0f, zero = 0.0f;
    for (int i = 0; i < n_shrink; ++i) {
        const float shrink = float(1.0 - double(i) / double(o.n_grid));
        PqArgs a = args(w, delta_.get(), n_out, n_in, o);
        a.shrink = shrink;
        LOWBIT_TRY(launch_pq<PqMode::kClip>(a, "awq clip pseudo_quantize"));
        for (int64_t j0 = 0; j0 < n_groups; j0 += batch) {
            const int64_t nb = std::min(batch, n_groups - j0);
            // e[jj] [nt, n_out] = xs[:, g-slice] · delta[:, g-slice]ᵀ; column-major: eᵀ = Δ_j (k = g) · xs_jᵀ.
            CALIB_CUBLAS_TRY(
                cublasGemmStridedBatchedEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(n_out), int(nt), int(g), &one,
                                           delta_.get() + j0 * g, CUDA_R_32F, int(n_in), g, xs_.get() + j0 * g,
                                           CUDA_R_32F, int(n_in), g, &zero, e_.get(), CUDA_R_32F, int(n_out),
                                           nt * n_out, int(nb), compute_, CUBLAS_GEMM_DEFAULT),
                "AwqCuda clip GEMM (" + std::to_string(nb) + " groups of [" + std::to_string(nt) + " x " +
                    std::to_string(g) + "] x [" + std::to_string(g) + " x " + std::to_string(n_out) + "])");
            const dim3 grid(blocks_for(n_out, 256), unsigned(nb));
            clip_update_kernel<<<grid, 256, 0, stream_>>>(e_.get(), nt, n_out, n_groups, j0, amax_.get(), shrink,
                                                          min_err_.get(), best_.get());
            CALIB_LAUNCH_CHECK("awq clip_update");
        }
    }
    apply_clip_kernel<<<blocks_for(n_out * n_in, 256), 256, 0, stream_>>>(w, n_out * n_in, n_in, g, best_.get());
    CALIB_LAUNCH_CHECK("awq apply_clip");
    if (max_val) {
        max_val->resize(size_t(n));
        return to_host(max_val->data(), best_.get(), n);
    }
    return ok_status();
}

Status CudaAwq::quantize(float* w, int64_t n_out, int64_t n_in, const AwqOptions& o, GroupQuant& out) {
    LOWBIT_TRY(validate(o, n_in));
    const int64_t g = o.group_size < 0 ? n_in : o.group_size, n_groups = n_in / g;
    LOWBIT_TRY(codes_.reserve(n_out * n_in, "AWQ codes"));
    LOWBIT_TRY(scales_.reserve(n_out * n_groups, "AWQ scales"));
    LOWBIT_TRY(zeros_.reserve(n_out * n_groups, "AWQ zeros"));
    PqArgs a = args(w, w, n_out, n_in, o);
    a.codes = codes_.get(), a.scales = scales_.get(), a.zeros = zeros_.get();
    LOWBIT_TRY(launch_pq<PqMode::kFinal>(a, "awq quantize"));
    out.n_rows = n_out, out.n_cols = n_in, out.n_groups = n_groups;
    out.codes.resize(size_t(n_out * n_in));
    out.scales.resize(size_t(n_out * n_groups));
    out.zeros.resize(size_t(n_out * n_groups));
    CALIB_CUDA_TRY(cudaMemcpyAsync(out.codes.data(), codes_.get(), out.codes.size(), cudaMemcpyDeviceToHost, stream_),
                   "AwqCuda codes download");
    CALIB_CUDA_TRY(cudaMemcpyAsync(out.scales.data(), scales_.get(), out.scales.size() * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream_),
                   "AwqCuda scales download");
    CALIB_CUDA_TRY(cudaMemcpyAsync(out.zeros.data(), zeros_.get(), out.zeros.size() * sizeof(int32_t),
                                   cudaMemcpyDeviceToHost, stream_),
                   "AwqCuda zeros download");
    CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "AwqCuda quantize");
    return ok_status();
}

} // namespace

Result<std::unique_ptr<AwqCuda>> AwqCuda::create(void* stream, bool tf32) {
    auto p = std::make_unique<CudaAwq>(tf32);
    LOWBIT_TRY(p->init(stream));
    return std::unique_ptr<AwqCuda>(std::move(p));
}

} // namespace lowbit::quantize::awq
