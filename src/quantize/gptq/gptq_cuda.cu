// SPDX-License-Identifier: MIT
// GPTQ solver on CUDA (contract in gptq_cuda.h). Every f32/f64 operation that decides a code uses the _rn
// intrinsics, so nothing is contracted into an FMA and a block's rounding equals gptq.cpp's row loop bit for bit;
// only the cuBLAS lazy update sums in another order than the CPU BLAS.
#include "core/log.h"
#include "quantize/gptq/gptq_cuda.h"

#include <algorithm>
#include <chrono>
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <numeric>
#include <string>
#include <utility>

#define LOWBIT_CUDA_TRY(call, what)                                                                                    \
    do {                                                                                                               \
        cudaError_t err_ = (call);                                                                                     \
        if (err_ != cudaSuccess)                                                                                       \
            return ::lowbit::make_error(::lowbit::ErrorCode::kDevice,                                                  \
                                        std::string("GPTQ (cuda) ") + (what) + ": " + cudaGetErrorString(err_));       \
    } while (0)
#define LOWBIT_CUBLAS_TRY(call, what)                                                                                  \
    do {                                                                                                               \
        cublasStatus_t st_ = (call);                                                                                   \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                                              \
            return ::lowbit::make_error(::lowbit::ErrorCode::kDevice, std::string("GPTQ (cuda) ") + (what) +           \
                                                                          ": cuBLAS status " + std::to_string(st_));   \
    } while (0)
#define LOWBIT_CUSOLVER_TRY(call, what)                                                                                \
    do {                                                                                                               \
        cusolverStatus_t st_ = (call);                                                                                 \
        if (st_ != CUSOLVER_STATUS_SUCCESS)                                                                            \
            return ::lowbit::make_error(::lowbit::ErrorCode::kDevice, std::string("GPTQ (cuda) ") + (what) +           \
                                                                          ": cuSOLVER status " + std::to_string(st_)); \
    } while (0)

namespace lowbit::quantize::gptq {
namespace {

constexpr int kRowsPerCta = 64; // block kernel: one thread per weight row
constexpr int kMaxBlock = 128;  // widest lazy-batch block the block kernel's shared memory is sized for
enum GroupMode : int { kDynamic = 0, kStatic = 1, kChannel = 2 };

// A device allocation that only grows (workspace reused across linears).
struct DeviceBuffer {
    void* ptr = nullptr;
    size_t bytes = 0;
    ~DeviceBuffer() { cudaFree(ptr); }
    Status reserve(size_t n, const char* what) {
        if (n <= bytes) return ok_status();
        cudaFree(ptr);
        ptr = nullptr;
        bytes = 0;
        LOWBIT_CUDA_TRY(cudaMalloc(&ptr, n), std::string("cudaMalloc ") + std::to_string(n) + " bytes for " + what);
        bytes = n;
        return ok_status();
    }
    template <class T> T* as() const { return static_cast<T*>(ptr); }
};

unsigned grid_for(int64_t n, int threads) {
    return unsigned((n + threads - 1) / threads);
}

// gptq.py Quantizer.find_params over columns [col_begin, col_begin + n_cols) of W [n_rows, ld] for the groups
// g0, g0 + 1, ... (blockIdx.y): one warp per row, min/max by comparisons (order independent), the scale and zero
// exactly as IntGridQuantizer. Writes scale/zero [n_rows, n_groups] at column g.
__global__ void find_params_kernel(const float* __restrict__ w, int64_t ld, int64_t n_rows, int64_t col_begin,
                                   int64_t n_cols, int64_t group_stride, int g0, int n_groups, int maxq, int sym,
                                   float* __restrict__ scale, float* __restrict__ zero) {
    const int lane = threadIdx.x & 31;
    const int64_t r = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
    if (r >= n_rows) return;
    const int g = g0 + int(blockIdx.y);
    const float* row = w + r * ld + col_begin + int64_t(blockIdx.y) * group_stride;
    float xmin = 0.0f, xmax = 0.0f;
    for (int64_t c = lane; c < n_cols; c += 32) {
        const float v = row[c];
        xmin = v < xmin ? v : xmin; // std::min(xmin, v)
        xmax = xmax < v ? v : xmax; // std::max(xmax, v)
    }
    for (int off = 16; off > 0; off >>= 1) {
        const float a = __shfl_xor_sync(0xffffffffu, xmin, off), b = __shfl_xor_sync(0xffffffffu, xmax, off);
        xmin = a < xmin ? a : xmin;
        xmax = xmax < b ? b : xmax;
    }
    if (lane != 0) return;
    if (sym) {
        const float m = fabsf(xmin);
        xmax = m < xmax ? xmax : m;
        if (xmin < 0.0f) xmin = -xmax;
    }
    if (xmin == 0.0f && xmax == 0.0f) {
        xmin = -1.0f;
        xmax = 1.0f;
    }
    const float s = __fdiv_rn(__fsub_rn(xmax, xmin), float(maxq));
    scale[r * n_groups + g] = s;
    zero[r * n_groups + g] = sym ? float(maxq + 1) / 2.0f : rintf(__fdiv_rn(-xmin, s));
}

// One lazy-batch block [i1, i1 + count) of the permuted W [n_rows, ld]: thread = row. The block's W tile and the
// Hinv tile U[i1:i2, i1:i2] sit in shared memory; each column is quantized with its group's parameters, its scaled
// error is propagated to the block's later columns (gptq.cpp's row loop, same operation order), then the tile of
// Ŵ goes back into W, the errors into err [n_rows, count] for the SGEMM, the codes into codes [n_rows, ld] at the
// original column perm[col].
__global__ void __launch_bounds__(kRowsPerCta)
    block_kernel(float* __restrict__ w, int64_t ld, int64_t n_rows, int64_t i1, int count, const float* __restrict__ u,
                 const float* __restrict__ scale, const float* __restrict__ zero, int n_groups, int mode,
                 int64_t group_size, const int32_t* __restrict__ perm, int maxq, int32_t* __restrict__ codes,
                 float* __restrict__ err, double* __restrict__ row_loss) {
    extern __shared__ float smem[];
    constexpr int kPitch = kRowsPerCta + 1; // column-major tiles, padded against bank conflicts on the fill
    float* hs = smem;                       // [count, count] Hinv tile
    float* ws = hs + count * count;         // [count][kPitch] W tile, then the errors
    float* qs = ws + count * kPitch;        // [count][kPitch] Ŵ tile
    unsigned char* cs = reinterpret_cast<unsigned char*>(qs + count * kPitch); // [count][kPitch] codes (< 256)
    const int tid = threadIdx.x;
    const int64_t r0 = int64_t(blockIdx.x) * kRowsPerCta;
    for (int idx = tid; idx < count * count; idx += kRowsPerCta)
        hs[idx] = u[(i1 + idx / count) * ld + i1 + idx % count];
    for (int idx = tid; idx < count * kRowsPerCta; idx += kRowsPerCta) {
        const int rr = idx / count, c = idx % count;
        ws[c * kPitch + rr] = r0 + rr < n_rows ? w[(r0 + rr) * ld + i1 + c] : 0.0f;
    }
    __syncthreads();
    const int64_t r = r0 + tid;
    if (r < n_rows) {
        double loss = row_loss[r];
        int last_g = -1;
        float s = 0.0f, z = 0.0f;
        for (int i = 0; i < count; ++i) {
            const int64_t col = i1 + i;
            const int g = mode == kChannel ? 0 : int(mode == kStatic ? perm[col] / group_size : col / group_size);
            if (g != last_g) {
                s = scale[r * n_groups + g];
                z = zero[r * n_groups + g];
                last_g = g;
            }
            const float x = ws[i * kPitch + tid];
            float q = __fadd_rn(rintf(__fdiv_rn(x, s)), z); // std::clamp(nearbyint(x / s) + z, 0, maxq)
            q = q < 0.0f ? 0.0f : (float(maxq) < q ? float(maxq) : q);
            const float deq = __fmul_rn(s, __fsub_rn(q, z));
            const float e = __fdiv_rn(__fsub_rn(x, deq), hs[i * count + i]);
            loss = __dadd_rn(loss, __dmul_rn(double(e), double(e)) / 2.0);
            const float* hrow = hs + i * count;
            for (int j = i + 1; j < count; ++j)
                ws[j * kPitch + tid] = __fsub_rn(ws[j * kPitch + tid], __fmul_rn(e, hrow[j]));
            ws[i * kPitch + tid] = e;
            qs[i * kPitch + tid] = deq;
            cs[i * kPitch + tid] = (unsigned char)(int(q));
        }
        row_loss[r] = loss;
    }
    __syncthreads();
    for (int idx = tid; idx < count * kRowsPerCta; idx += kRowsPerCta) {
        const int rr = idx / count, c = idx % count;
        if (r0 + rr >= n_rows) continue;
        w[(r0 + rr) * ld + i1 + c] = qs[c * kPitch + rr];
        err[(r0 + rr) * count + c] = ws[c * kPitch + rr];
        codes[(r0 + rr) * ld + perm[i1 + c]] = int32_t(cs[c * kPitch + rr]);
    }
}

// hw [K, K] = H[perm, perm] (dead diagonal -> 1) with damp_add on the diagonal.
__global__ void build_h_kernel(double* __restrict__ hw, const double* __restrict__ h, const int32_t* __restrict__ perm,
                               int64_t k, double damp_add) {
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= k * k) return;
    const int64_t i = idx / k, j = idx % k;
    double v = h[int64_t(perm[i]) * k + perm[j]];
    if (i == j) {
        if (v == 0.0) v = 1.0;
        v = __dadd_rn(v, damp_add);
    }
    hw[idx] = v;
}

// u [K, K] f32 row-major upper = the lower column-major Cholesky factor (Hinv = UᵀU), zeros below.
__global__ void extract_upper_kernel(float* __restrict__ u, const double* __restrict__ hw, int64_t k) {
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= k * k) return;
    u[idx] = idx % k >= idx / k ? float(hw[idx]) : 0.0f;
}

// Zeroes the dead columns of W [n_rows, k] (dead [k] flags).
__global__ void zero_dead_kernel(float* __restrict__ w, int64_t n_rows, int64_t k,
                                 const unsigned char* __restrict__ dead) {
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= n_rows * k) return;
    if (dead[idx % k]) w[idx] = 0.0f;
}

// dst[r, c] = src[r, perm[c]] (gather = to processing order) or dst[r, perm[c]] = src[r, c] (scatter = back).
__global__ void permute_cols_kernel(float* __restrict__ dst, const float* __restrict__ src, int64_t n_rows, int64_t k,
                                    const int32_t* __restrict__ perm, int scatter) {
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= n_rows * k) return;
    const int64_t r = idx / k, c = idx % k;
    if (scatter)
        dst[r * k + perm[c]] = src[idx];
    else
        dst[idx] = src[r * k + perm[c]];
}

// Ŵ [n_rows, k] = f16(scale) * (code - zero) with the checkpoint's g_idx (scheme::gptq::dequantize).
__global__ void dequant_f16_kernel(float* __restrict__ w, const int32_t* __restrict__ codes,
                                   const float* __restrict__ scale, const float* __restrict__ zero,
                                   const int32_t* __restrict__ g_idx, int64_t n_rows, int64_t k, int n_groups) {
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= n_rows * k) return;
    const int64_t r = idx / k, c = idx % k;
    const int64_t gi = r * n_groups + g_idx[c];
    const float s = __half2float(__float2half_rn(scale[gi]));
    w[idx] = __fmul_rn(s, float(codes[idx] - int32_t(zero[gi])));
}

} // namespace

struct GptqCudaSolver::Impl {
    cudaStream_t stream = nullptr; // null: the legacy default stream
    cublasHandle_t blas = nullptr;
    cusolverDnHandle_t solver = nullptr;
    // Prepared Hessian.
    int64_t k = 0;
    bool prepared = false, permuted = false;
    double damp_used = 0.0;
    std::vector<int32_t> perm;          // [K] processing order
    std::vector<unsigned char> dead;    // [K] original order
    DeviceBuffer hw, u, perm_d, dead_d; // f64 [K,K], f32 [K,K], int32 [K], u8 [K]
    DeviceBuffer solver_work, info_d;
    // Per weight.
    DeviceBuffer w_perm, codes, err, scale, zero, row_loss, g_idx_d;

    ~Impl() {
        if (solver) cusolverDnDestroy(solver);
        if (blas) cublasDestroy(blas);
    }
    GptqCudaTimes times;
    uint64_t bytes() const {
        return hw.bytes + u.bytes + perm_d.bytes + dead_d.bytes + solver_work.bytes + info_d.bytes + w_perm.bytes +
               codes.bytes + err.bytes + scale.bytes + zero.bytes + row_loss.bytes + g_idx_d.bytes;
    }
    // Stream-ordered copy (either direction), complete when it returns.
    Status copy(void* dst, const void* src, size_t bytes, const std::string& what) {
        LOWBIT_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream), what);
        LOWBIT_CUDA_TRY(cudaStreamSynchronize(stream), what);
        return ok_status();
    }
    Status factor(const double* h_dev, double damp_add, int& info);
    Status prepare(const double* h_dev, int64_t n_cols, const GptqOptions& opt);
    Result<GptqResult> run(float* w_dev, int64_t n_rows, const GptqOptions& opt, bool round_f16);
};

// hw = H[perm, perm] + damp_add·I, then potrf -> potri -> potrf (lower column-major = upper row-major, as the
// CPU's LAPACK calls). info > 0: not positive definite.
Status GptqCudaSolver::Impl::factor(const double* h_dev, double damp_add, int& info) {
    const int n = int(k);
    build_h_kernel<<<grid_for(k * k, 256), 256, 0, stream>>>(hw.as<double>(), h_dev, perm_d.as<int32_t>(), k, damp_add);
    LOWBIT_CUDA_TRY(cudaGetLastError(), "build_h_kernel (K=" + std::to_string(k) + ")");
    int lwork = 0, lwork2 = 0;
    LOWBIT_CUSOLVER_TRY(cusolverDnDpotrf_bufferSize(solver, CUBLAS_FILL_MODE_LOWER, n, hw.as<double>(), n, &lwork),
                        "potrf_bufferSize");
    LOWBIT_CUSOLVER_TRY(cusolverDnDpotri_bufferSize(solver, CUBLAS_FILL_MODE_LOWER, n, hw.as<double>(), n, &lwork2),
                        "potri_bufferSize");
    lwork = std::max(lwork, lwork2);
    LOWBIT_TRY(solver_work.reserve(size_t(lwork) * sizeof(double), "the cuSOLVER workspace"));
    LOWBIT_TRY(info_d.reserve(sizeof(int), "cuSOLVER info"));
    double* work = solver_work.as<double>();
    auto step = [&](int which) -> Status {
        if (which == 1)
            LOWBIT_CUSOLVER_TRY(
                cusolverDnDpotri(solver, CUBLAS_FILL_MODE_LOWER, n, hw.as<double>(), n, work, lwork, info_d.as<int>()),
                "potri (K=" + std::to_string(k) + ")");
        else
            LOWBIT_CUSOLVER_TRY(
                cusolverDnDpotrf(solver, CUBLAS_FILL_MODE_LOWER, n, hw.as<double>(), n, work, lwork, info_d.as<int>()),
                "potrf (K=" + std::to_string(k) + ")");
        LOWBIT_TRY(copy(&info, info_d.ptr, sizeof(int), "reading cuSOLVER info"));
        return ok_status();
    };
    LOWBIT_TRY(step(0));                // H = L Lᵀ
    if (info == 0) LOWBIT_TRY(step(1)); // H⁻¹ (lower)
    if (info == 0) LOWBIT_TRY(step(0)); // H⁻¹ = L2 L2ᵀ; only the lower triangle is read, so no mirroring
    return ok_status();
}

Status GptqCudaSolver::Impl::prepare(const double* h_dev, int64_t n_cols, const GptqOptions& opt) {
    LOWBIT_TRY(validate(opt, n_cols));
    prepared = false;
    k = n_cols;
    const size_t kk = size_t(k) * size_t(k);
    std::vector<double> diag(static_cast<size_t>(k));
    LOWBIT_CUDA_TRY(cudaMemcpy2DAsync(diag.data(), sizeof(double), h_dev, size_t(k + 1) * sizeof(double),
                                      sizeof(double), size_t(k), cudaMemcpyDeviceToHost, stream),
                    "reading diag(H)");
    LOWBIT_CUDA_TRY(cudaStreamSynchronize(stream), "reading diag(H)");
    dead.assign(size_t(k), 0);
    for (int64_t c = 0; c < k; ++c)
        if (diag[size_t(c)] == 0.0) dead[size_t(c)] = 1, diag[size_t(c)] = 1.0;
    perm.resize(size_t(k));
    std::iota(perm.begin(), perm.end(), 0);
    if (opt.desc_act)
        std::stable_sort(perm.begin(), perm.end(),
                         [&](int32_t a, int32_t b) { return diag[size_t(a)] > diag[size_t(b)]; });
    permuted = opt.desc_act;
    double mean_diag = 0.0; // summed in processing order, as gptq.cpp
    for (int64_t i = 0; i < k; ++i) mean_diag += diag[size_t(perm[size_t(i)])];
    mean_diag /= double(k);

    LOWBIT_TRY(hw.reserve(kk * sizeof(double), "the f64 Hessian"));
    LOWBIT_TRY(u.reserve(kk * sizeof(float), "the inverse Cholesky factor"));
    LOWBIT_TRY(perm_d.reserve(size_t(k) * sizeof(int32_t), "the permutation"));
    LOWBIT_TRY(dead_d.reserve(size_t(k), "the dead-column flags"));
    LOWBIT_TRY(copy(perm_d.ptr, perm.data(), size_t(k) * sizeof(int32_t), "uploading the permutation"));
    LOWBIT_TRY(copy(dead_d.ptr, dead.data(), size_t(k), "uploading dead columns"));
    for (double damp = opt.damp_percent;; damp *= 10.0) {
        int info = 0;
        LOWBIT_TRY(factor(h_dev, damp * mean_diag, info));
        if (info == 0) {
            damp_used = damp;
            if (damp != opt.damp_percent)
                log_warn("GPTQ: Hessian not positive definite with damping {:.4g}; used {:.4g}", opt.damp_percent,
                         damp);
            break;
        }
        if (damp >= 1.0)
            return make_error(ErrorCode::kBadInput, "GPTQ: the Hessian is not positive definite even with 100% "
                                                    "damping (calibration activations may contain NaN/Inf)");
    }
    extract_upper_kernel<<<grid_for(int64_t(kk), 256), 256, 0, stream>>>(u.as<float>(), hw.as<double>(), k);
    LOWBIT_CUDA_TRY(cudaGetLastError(), "extract_upper_kernel (K=" + std::to_string(k) + ")");
    prepared = true;
    return ok_status();
}

Result<GptqResult> GptqCudaSolver::Impl::run(float* w_dev, int64_t n_rows, const GptqOptions& opt, bool round_f16) {
    if (!prepared) return make_error(ErrorCode::kInternal, "GPTQ (cuda): quantize_prepared before prepare");
    LOWBIT_TRY(validate(opt, k));
    if (opt.desc_act != permuted)
        return make_error(ErrorCode::kInternal, "GPTQ (cuda): desc_act differs between prepare and quantize");
    if (opt.block_size > kMaxBlock)
        return make_error(ErrorCode::kUnsupported, "GPTQ (cuda): block size " + std::to_string(opt.block_size) +
                                                       " is larger than the kernel's " + std::to_string(kMaxBlock));
    if (n_rows < 1) return make_error(ErrorCode::kUsage, "GPTQ (cuda): the weight has no rows");
    const int64_t N = n_rows, K = k, nk = N * K;
    const int64_t gs = opt.group_size == -1 ? K : opt.group_size, n_groups = K / gs;
    const int mode = opt.group_size == -1 ? kChannel : (opt.static_groups ? kStatic : kDynamic);
    const int maxq = (1 << opt.bits) - 1, sym = opt.sym ? 1 : 0;
    const std::string shape = " [" + std::to_string(N) + ", " + std::to_string(K) + "]";
    const auto t_start = std::chrono::steady_clock::now();
    LOWBIT_TRY(scale.reserve(size_t(N * n_groups) * sizeof(float), "scales"));
    LOWBIT_TRY(zero.reserve(size_t(N * n_groups) * sizeof(float), "zeros"));
    LOWBIT_TRY(row_loss.reserve(size_t(N) * sizeof(double), "row losses"));
    LOWBIT_TRY(codes.reserve(size_t(nk) * sizeof(int32_t), "codes"));
    LOWBIT_TRY(err.reserve(size_t(N * opt.block_size) * sizeof(float), "block errors"));
    LOWBIT_TRY(g_idx_d.reserve(size_t(K) * sizeof(int32_t), "g_idx"));
    if (permuted) LOWBIT_TRY(w_perm.reserve(size_t(nk) * sizeof(float), "the permuted weight"));
    LOWBIT_CUDA_TRY(cudaMemsetAsync(row_loss.ptr, 0, size_t(N) * sizeof(double), stream), "clearing row losses");
    auto find_params = [&](const float* w, int64_t col_begin, int64_t n_cols, int g0, int count_groups) -> Status {
        constexpr int kWarps = 8;
        find_params_kernel<<<dim3(grid_for(N, kWarps), unsigned(count_groups)), kWarps * 32, 0, stream>>>(
            w, K, N, col_begin, n_cols, gs, g0, int(n_groups), maxq, sym, scale.as<float>(), zero.as<float>());
        LOWBIT_CUDA_TRY(cudaGetLastError(), "find_params_kernel" + shape);
        return ok_status();
    };
    if (mode == kChannel) LOWBIT_TRY(find_params(w_dev, 0, K, 0, 1)); // before dead columns, as gptq.py
    if (std::find(dead.begin(), dead.end(), 1) != dead.end()) {
        zero_dead_kernel<<<grid_for(nk, 256), 256, 0, stream>>>(w_dev, N, K, dead_d.as<unsigned char>());
        LOWBIT_CUDA_TRY(cudaGetLastError(), "zero_dead_kernel" + shape);
    }
    if (mode == kStatic) LOWBIT_TRY(find_params(w_dev, 0, gs, 0, int(n_groups)));
    float* W = w_dev;
    if (permuted) {
        W = w_perm.as<float>();
        permute_cols_kernel<<<grid_for(nk, 256), 256, 0, stream>>>(W, w_dev, N, K, perm_d.as<int32_t>(), 0);
        LOWBIT_CUDA_TRY(cudaGetLastError(), "permute_cols_kernel" + shape);
    }
    const size_t smem_max = size_t(kMaxBlock) * kMaxBlock * 4 + size_t(kMaxBlock) * (kRowsPerCta + 1) * 9;
    LOWBIT_CUDA_TRY(cudaFuncSetAttribute(block_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem_max)),
                    "raising the block kernel's shared memory");
    const float minus_one = -1.0f, one = 1.0f;
    for (int64_t i1 = 0; i1 < K; i1 += opt.block_size) {
        const int64_t i2 = std::min(i1 + opt.block_size, K);
        const int count = int(i2 - i1);
        if (mode == kDynamic) { // the groups that start in this block, from W as it stands now
            const int64_t g_first = (i1 + gs - 1) / gs, g_last = (i2 - 1) / gs;
            if (g_first <= g_last)
                LOWBIT_TRY(find_params(W, g_first * gs, gs, int(g_first), int(g_last - g_first + 1)));
        }
        const size_t smem = size_t(count) * count * 4 + size_t(count) * (kRowsPerCta + 1) * 9;
        block_kernel<<<grid_for(N, kRowsPerCta), kRowsPerCta, smem, stream>>>(
            W, K, N, i1, count, u.as<float>(), scale.as<float>(), zero.as<float>(), int(n_groups), mode, gs,
            perm_d.as<int32_t>(), maxq, codes.as<int32_t>(), err.as<float>(), row_loss.as<double>());
        LOWBIT_CUDA_TRY(cudaGetLastError(), "block_kernel" + shape + " at column " + std::to_string(i1));
        if (i2 < K) // W[:, i2:] -= Err1 · Hinv[i1:i2, i2:] (column-major view: Wᵀ[i2:, :] -= Hinvᵀ · Err1ᵀ)
            LOWBIT_CUBLAS_TRY(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, int(K - i2), int(N), count, &minus_one,
                                          u.as<float>() + i1 * K + i2, int(K), err.as<float>(), count, &one, W + i2,
                                          int(K)),
                              "lazy-update SGEMM" + shape);
    }
    if (permuted) {
        permute_cols_kernel<<<grid_for(nk, 256), 256, 0, stream>>>(w_dev, W, N, K, perm_d.as<int32_t>(), 1);
        LOWBIT_CUDA_TRY(cudaGetLastError(), "permute_cols_kernel (back)" + shape);
    }
    LOWBIT_CUDA_TRY(cudaStreamSynchronize(stream), "synchronizing the solve" + shape);
    const auto t_solved = std::chrono::steady_clock::now();
    times.quantize_s += std::chrono::duration<double>(t_solved - t_start).count();
    ++times.n_quantize;
    GptqResult res;
    res.n_rows = N, res.n_cols = K, res.n_groups = n_groups, res.damp_used = damp_used, res.perm = perm;
    res.g_idx.resize(size_t(K));
    for (int64_t p = 0; p < K; ++p) {
        const int64_t c = perm[size_t(p)];
        res.g_idx[size_t(c)] = int32_t(mode != kDynamic ? c / gs : p / gs);
    }
    if (round_f16) {
        LOWBIT_TRY(copy(g_idx_d.ptr, res.g_idx.data(), size_t(K) * sizeof(int32_t), "uploading g_idx"));
        dequant_f16_kernel<<<grid_for(nk, 256), 256, 0, stream>>>(w_dev, codes.as<int32_t>(), scale.as<float>(),
                                                                  zero.as<float>(), g_idx_d.as<int32_t>(), N, K,
                                                                  int(n_groups));
        LOWBIT_CUDA_TRY(cudaGetLastError(), "dequant_f16_kernel" + shape);
    }
    const auto t_down = std::chrono::steady_clock::now();
    res.codes.resize(size_t(nk));
    res.scales.resize(size_t(N * n_groups));
    std::vector<float> zf(size_t(N * n_groups));
    std::vector<double> losses(static_cast<size_t>(N));
    LOWBIT_TRY(copy(res.codes.data(), codes.ptr, size_t(nk) * sizeof(int32_t), "downloading codes" + shape));
    LOWBIT_TRY(copy(res.scales.data(), scale.ptr, res.scales.size() * sizeof(float), "downloading scales"));
    LOWBIT_TRY(copy(zf.data(), zero.ptr, zf.size() * sizeof(float), "downloading zeros"));
    LOWBIT_TRY(copy(losses.data(), row_loss.ptr, losses.size() * sizeof(double), "downloading losses"));
    res.zeros.resize(zf.size());
    for (size_t i = 0; i < zf.size(); ++i) res.zeros[i] = int32_t(zf[i]);
    res.loss = std::accumulate(losses.begin(), losses.end(), 0.0);
    times.download_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_down).count();
    return res;
}

GptqCudaSolver::GptqCudaSolver() : impl_(std::make_unique<Impl>()) {}
GptqCudaSolver::~GptqCudaSolver() = default;

Result<std::unique_ptr<GptqCudaSolver>> GptqCudaSolver::create() {
    int n_dev = 0;
    LOWBIT_CUDA_TRY(cudaGetDeviceCount(&n_dev), "cudaGetDeviceCount");
    if (n_dev < 1) return make_error(ErrorCode::kDevice, "GPTQ (cuda): no CUDA device is visible");
    std::unique_ptr<GptqCudaSolver> s(new GptqCudaSolver());
    LOWBIT_CUBLAS_TRY(cublasCreate(&s->impl_->blas), "cublasCreate");
    LOWBIT_CUSOLVER_TRY(cusolverDnCreate(&s->impl_->solver), "cusolverDnCreate");
    return Result<std::unique_ptr<GptqCudaSolver>>(std::move(s));
}

Status GptqCudaSolver::prepare(const double* h_dev, int64_t n_cols, const GptqOptions& opt) {
    const auto t0 = std::chrono::steady_clock::now();
    Status st = impl_->prepare(h_dev, n_cols, opt);
    if (st.ok()) LOWBIT_CUDA_TRY(cudaStreamSynchronize(impl_->stream), "synchronizing after prepare");
    impl_->times.prepare_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++impl_->times.n_prepare;
    return st;
}

Result<GptqResult> GptqCudaSolver::quantize_prepared(float* w_dev, int64_t n_rows, const GptqOptions& opt,
                                                     bool round_scales_f16) {
    return impl_->run(w_dev, n_rows, opt, round_scales_f16);
}

Result<GptqResult> GptqCudaSolver::quantize(float* w_dev, int64_t n_rows, int64_t n_cols, const double* h_dev,
                                            const GptqOptions& opt, bool round_scales_f16) {
    LOWBIT_TRY(prepare(h_dev, n_cols, opt));
    return quantize_prepared(w_dev, n_rows, opt, round_scales_f16);
}

Status GptqCudaSolver::set_stream(void* stream) {
    impl_->stream = static_cast<cudaStream_t>(stream);
    LOWBIT_CUBLAS_TRY(cublasSetStream(impl_->blas, impl_->stream), "cublasSetStream");
    LOWBIT_CUSOLVER_TRY(cusolverDnSetStream(impl_->solver, impl_->stream), "cusolverDnSetStream");
    return ok_status();
}

const GptqCudaTimes& GptqCudaSolver::times() const {
    return impl_->times;
}

uint64_t GptqCudaSolver::workspace_bytes() const {
    return impl_->bytes();
}

Result<GptqResult> gptq_quantize_cuda(const float* w, int64_t n_rows, int64_t n_cols, const std::vector<double>& h,
                                      const GptqOptions& opt, bool round_scales_f16) {
    LOWBIT_TRY(validate(opt, n_cols));
    if (n_rows < 1 || h.size() != size_t(n_cols) * size_t(n_cols))
        return make_error(ErrorCode::kInternal, "GPTQ (cuda): Hessian size does not match the weight's columns");
    LOWBIT_ASSIGN_OR_RETURN(auto solver, GptqCudaSolver::create());
    DeviceBuffer w_d, h_d;
    const size_t w_bytes = size_t(n_rows) * size_t(n_cols) * sizeof(float);
    LOWBIT_TRY(w_d.reserve(w_bytes, "W"));
    LOWBIT_TRY(h_d.reserve(h.size() * sizeof(double), "H"));
    LOWBIT_CUDA_TRY(cudaMemcpy(w_d.ptr, w, w_bytes, cudaMemcpyHostToDevice), "uploading W");
    LOWBIT_CUDA_TRY(cudaMemcpy(h_d.ptr, h.data(), h.size() * sizeof(double), cudaMemcpyHostToDevice), "uploading H");
    LOWBIT_ASSIGN_OR_RETURN(GptqResult res,
                            solver->quantize(w_d.as<float>(), n_rows, n_cols, h_d.as<double>(), opt, round_scales_f16));
    res.dequant.resize(size_t(n_rows) * size_t(n_cols));
    LOWBIT_CUDA_TRY(cudaMemcpy(res.dequant.data(), w_d.ptr, w_bytes, cudaMemcpyDeviceToHost), "downloading Ŵ");
    return res;
}

Result<uint64_t> cuda_used_bytes() {
    size_t free_b = 0, total_b = 0;
    LOWBIT_CUDA_TRY(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    return uint64_t(total_b - free_b);
}

} // namespace lowbit::quantize::gptq
