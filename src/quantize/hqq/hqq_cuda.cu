// SPDX-License-Identifier: MIT
// CUDA HQQ solver, device half (hqq_cuda_device.h; hqq_cuda.h is the interface). One thread owns one group and replays
// the CPU solver's arithmetic for it in the CPU's order: axis 1 keeps 4 f32 lane sums (the SSE lanes of
// hqq_solver.cpp's row_sums) folded in f64, then the shrink corrections in element order; axis 0 sums every element in
// f64 in row order. All f32 operations are the explicit round-to-nearest intrinsics, so nvcc cannot contract them into
// FMAs. Per iteration: one kernel over all groups (block reduction of the error) + one 1-block kernel that folds the
// blocks, records the error and sets the stop flag; later iterations see the flag and return, so the host syncs once
// per matrix. The weight stays on the device in its input type (bf16/f16 are widened exactly at each load).
#include "quantize/hqq/hqq_cuda_device.h"
#include "quantize/hqq/hqq_pow.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mutex>
#include <string>

#define HQQ_CUDA_TRY(call, what)                                                                                       \
    do {                                                                                                               \
        cudaError_t err_ = (call);                                                                                     \
        if (err_ != cudaSuccess)                                                                                       \
            return ::lowbit::make_error(::lowbit::ErrorCode::kDevice,                                                  \
                                        std::string("hqq cuda: ") + (what) + ": " + cudaGetErrorString(err_));         \
    } while (0)

namespace lowbit::quantize::hqq::device {
namespace {

constexpr int kThreads = 256;           // threads per block of the group kernels
constexpr int kFoldThreads = 1024;      // the 1-block fold kernel
constexpr size_t kStageBytes = 8 << 20; // one pinned staging chunk (two of them alternate)

struct SolveState {
    double best;                  // lowest error so far (hqq starts from 1e4)
    int stop;                     // 1 once an iteration did not improve
    int n_iters;                  // iterations run
    unsigned long long bad_index; // first non-finite element (~0 when none)
};

// ---- device arithmetic: the CPU solver's expressions, rounding made explicit --------------------------------

template <class T> __device__ __forceinline__ float to_f32(T v);
template <> __device__ __forceinline__ float to_f32<float>(float v) {
    return v;
}
template <> __device__ __forceinline__ float to_f32<__half>(__half v) {
    return __half2float(v);
}
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) {
    return __bfloat162float(v);
}

// clamp(round_half_even(clamp(w s + z, -1, max_q + 1)), 0, max_q), with the CPU's magic-number rounding.
__device__ __forceinline__ float code_of(float w, float s, float z, float max_q) {
    float v = __fadd_rn(__fmul_rn(w, s), z);
    v = v < -1.0f ? -1.0f : (max_q + 1.0f < v ? max_q + 1.0f : v);
    const float r = __fsub_rn(__fadd_rn(v, 12582912.0f), 12582912.0f);
    return r < 0.0f ? 0.0f : (max_q < r ? max_q : r);
}

// sign(d) * relu(|d| - |d|^(p-1) / beta); the power is the CPU solver's lp_pow (hqq_pow.h), bit for bit.
__device__ __forceinline__ float shrink(float d, float inv_beta, float pm1) {
    const float a = fabsf(d);
    float r = __fsub_rn(a, __fmul_rn(inv_beta, lp_pow(a, pm1)));
    r = r < 0.0f ? 0.0f : r;
    return d > 0.0f ? r : -r;
}

// Sum of v over the block into out (deterministic tree); every thread must call it.
__device__ __forceinline__ void block_sum(double v, double* out) {
    __shared__ double buf[kThreads];
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) buf[threadIdx.x] = __dadd_rn(buf[threadIdx.x], buf[threadIdx.x + s]);
        __syncthreads();
    }
    if (threadIdx.x == 0) *out = buf[0];
}

// Element (k-th of group g) of the grouped [R, C] matrix: axis 1 groups are rows, axis 0 groups are columns.
struct Groups {
    int64_t R, C, n_groups, group_elems;
    int axis;
    __device__ __forceinline__ int64_t index(int64_t g, int64_t k) const { return axis == 1 ? g * C + k : k * C + g; }
};

template <class T>
__global__ void init_kernel(const T* w, Groups gr, float max_q, int round_zero, float* s_inv, float* zero,
                            SolveState* st) {
    const int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (g >= gr.n_groups) return;
    float mn = INFINITY, mx = -INFINITY;
    for (int64_t k = 0; k < gr.group_elems; ++k) {
        const int64_t i = gr.index(g, k);
        const float v = to_f32(w[i]);
        if (!isfinite(v)) atomicMin(&st->bad_index, static_cast<unsigned long long>(i));
        mn = v < mn ? v : mn; // std::min(mn, v)
        mx = mx < v ? v : mx; // std::max(mx, v)
    }
    float s = __fdiv_rn(max_q, __fsub_rn(mx, mn));
    s = 2e4f < s ? 2e4f : s;
    float z = __fmul_rn(-mn, s);
    if (round_zero) z = rintf(z);
    s_inv[g] = s;
    zero[g] = z;
}

// One proximal iteration, axis 1 (a group is C consecutive weights): hqq_solver.cpp row_sums + iterate_block.
template <class T>
__global__ void iterate_axis1(const T* w, Groups gr, float max_q, const float* s_inv, float* zero, float inv_beta,
                              float pm1, float thresh, const SolveState* st, double* block_err) {
    if (st->stop) return;
    const int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    double esum = 0.0;
    if (g < gr.n_groups) {
        const T* row = w + g * gr.C;
        const int64_t n = gr.C;
        const float s = s_inv[g], z = zero[g];
        float zs[4] = {0.0f, 0.0f, 0.0f, 0.0f}, er[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        bool big = false;
        int64_t c = 0;
        for (; c + 4 <= n; c += 4) {
#pragma unroll
            for (int l = 0; l < 4; ++l) {
                const float wf = to_f32(row[c + l]);
                const float wq = code_of(wf, s, z, max_q);
                const float d = __fsub_rn(wf, __fdiv_rn(__fsub_rn(wq, z), s));
                const float a = fabsf(d);
                zs[l] = __fadd_rn(zs[l], __fsub_rn(wq, __fmul_rn(wf, s)));
                er[l] = __fadd_rn(er[l], a);
                big |= a > thresh;
            }
        }
        double zsum = 0.0;
#pragma unroll
        for (int l = 0; l < 4; ++l) {
            zsum = __dadd_rn(zsum, double(zs[l]));
            esum = __dadd_rn(esum, double(er[l]));
        }
        for (; c < n; ++c) {
            const float wf = to_f32(row[c]);
            const float wq = code_of(wf, s, z, max_q);
            const float a = fabsf(__fsub_rn(wf, __fdiv_rn(__fsub_rn(wq, z), s)));
            zsum = __dadd_rn(zsum, double(__fsub_rn(wq, __fmul_rn(wf, s))));
            esum = __dadd_rn(esum, double(a));
            big |= a > thresh;
        }
        if (big) { // the rare shrunk elements, in element order (the CPU's second pass)
            for (c = 0; c < n; ++c) {
                const float wf = to_f32(row[c]);
                const float wq = code_of(wf, s, z, max_q);
                const float d = __fsub_rn(wf, __fdiv_rn(__fsub_rn(wq, z), s));
                if (fabsf(d) <= thresh) continue;
                const float term = __fsub_rn(wq, __fmul_rn(wf, s));
                const float shrunk = __fsub_rn(wq, __fmul_rn(__fsub_rn(wf, shrink(d, inv_beta, pm1)), s));
                zsum = __dadd_rn(zsum, double(__fsub_rn(shrunk, term)));
            }
        }
        zero[g] = __double2float_rn(__ddiv_rn(zsum, double(gr.group_elems)));
    }
    block_sum(esum, &block_err[blockIdx.x]);
}

// One proximal iteration, axis 0 (a group is a column of R weights): f64 sums in row order, each shrink
// correction right after its element (the CPU adds a row's corrections after that row's terms).
template <class T>
__global__ void iterate_axis0(const T* w, Groups gr, float max_q, const float* s_inv, float* zero, float inv_beta,
                              float pm1, float thresh, const SolveState* st, double* block_err) {
    if (st->stop) return;
    const int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    double esum = 0.0;
    if (g < gr.n_groups) {
        const float s = s_inv[g], z = zero[g];
        double zsum = 0.0;
        for (int64_t r = 0; r < gr.R; ++r) {
            const float wf = to_f32(w[r * gr.C + g]);
            const float wq = code_of(wf, s, z, max_q);
            const float d = __fsub_rn(wf, __fdiv_rn(__fsub_rn(wq, z), s));
            const float a = fabsf(d);
            const float term = __fsub_rn(wq, __fmul_rn(wf, s));
            zsum = __dadd_rn(zsum, double(term));
            esum = __dadd_rn(esum, double(a));
            if (a > thresh) {
                const float shrunk = __fsub_rn(wq, __fmul_rn(__fsub_rn(wf, shrink(d, inv_beta, pm1)), s));
                zsum = __dadd_rn(zsum, double(__fsub_rn(shrunk, term)));
            }
        }
        zero[g] = __double2float_rn(__ddiv_rn(zsum, double(gr.group_elems)));
    }
    block_sum(esum, &block_err[blockIdx.x]);
}

// Folds the blocks' error sums (fixed order), records the iteration's f32 mean error, decides the early stop.
__global__ void fold_kernel(const double* block_err, int64_t n_blocks, double numel, int it, SolveState* st,
                            double* errors) {
    if (st->stop) return;
    __shared__ double buf[kFoldThreads];
    double v = 0.0;
    for (int64_t b = threadIdx.x; b < n_blocks; b += kFoldThreads) v = __dadd_rn(v, block_err[b]);
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = kFoldThreads / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) buf[threadIdx.x] = __dadd_rn(buf[threadIdx.x], buf[threadIdx.x + s]);
        __syncthreads();
    }
    if (threadIdx.x != 0) return;
    const double err = double(__double2float_rn(__ddiv_rn(buf[0], numel))); // hqq: an f32 mean
    errors[it] = err;
    st->n_iters = it + 1;
    if (err < st->best) {
        st->best = err;
    } else {
        st->stop = 1;
    }
}

__device__ __forceinline__ float round_meta(float v, int meta_f16) {
    return meta_f16 ? __half2float(__float2half_rn(v)) : v;
}

// Final codes with the final zero, stored scale 1/s and zero rounded to the meta dtype, and the sums of the
// reconstruction error with those rounded values (HqqTensor's dequantize).
template <class T>
__global__ void codes_kernel(const T* w, Groups gr, float max_q, const float* s_inv, const float* zero, int meta_f16,
                             uint8_t* codes, float* scale_out, float* zero_out, double* block_stats) {
    const int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    double se = 0.0, mx = 0.0, sum = 0.0, sum2 = 0.0;
    if (g < gr.n_groups) {
        const float s = s_inv[g], z = zero[g];
        const float sm = round_meta(__fdiv_rn(1.0f, s), meta_f16), zm = round_meta(z, meta_f16);
        scale_out[g] = sm;
        zero_out[g] = zm;
        for (int64_t k = 0; k < gr.group_elems; ++k) {
            const int64_t i = gr.index(g, k);
            const float wf = to_f32(w[i]);
            const float q = code_of(wf, s, z, max_q);
            codes[i] = static_cast<uint8_t>(q);
            const double d = double(wf) - double(__fmul_rn(__fsub_rn(q, zm), sm));
            se += d * d;
            mx = fmax(mx, fabs(d));
            sum += double(wf);
            sum2 += double(wf) * double(wf);
        }
    }
    __shared__ double buf[4][kThreads];
    buf[0][threadIdx.x] = se;
    buf[1][threadIdx.x] = mx;
    buf[2][threadIdx.x] = sum;
    buf[3][threadIdx.x] = sum2;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            buf[0][threadIdx.x] += buf[0][threadIdx.x + s];
            buf[1][threadIdx.x] = fmax(buf[1][threadIdx.x], buf[1][threadIdx.x + s]);
            buf[2][threadIdx.x] += buf[2][threadIdx.x + s];
            buf[3][threadIdx.x] += buf[3][threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x < 4) block_stats[4 * int64_t(blockIdx.x) + threadIdx.x] = buf[threadIdx.x][0];
}

// hqq bitpack of the [R, C] codes: 4/2/1 bit split the rows into 8/nbits parts (part k at shift 8 - nbits(k+1));
// 3 bit: ten parts of ceil(R/10) rows (missing rows are zeros) per int32, part k at shift 27 - 3k.
__global__ void pack_kernel(const uint8_t* codes, int64_t R, int64_t C, int nbits, uint8_t* out) {
    const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (nbits == 3) {
        const int64_t step = (R + 9) / 10;
        if (j >= step * C) return;
        const int64_t i = j / C, c = j % C;
        uint32_t v = 0;
        for (int k = 0; k < 10 && k * step + i < R; ++k) v |= uint32_t(codes[(k * step + i) * C + c]) << (27 - 3 * k);
        reinterpret_cast<uint32_t*>(out)[j] = v;
        return;
    }
    const int parts = 8 / nbits;
    const int64_t step = R / parts;
    if (j >= step * C) return;
    const int64_t i = j / C, c = j % C;
    uint32_t v = 0;
    for (int k = 0; k < parts; ++k) v |= uint32_t(codes[(k * step + i) * C + c]) << (8 - nbits * (k + 1));
    out[j] = uint8_t(v);
}

// ---- host side ----------------------------------------------------------------------------------------------

// A device or pinned host buffer that only grows; freed with its owner.
struct DevBuf {
    void* p = nullptr;
    size_t n = 0;
    bool pinned = false;
    Status reserve(size_t bytes, const char* what) {
        if (bytes <= n) return ok_status();
        release();
        const size_t want = std::max(bytes, n + n / 4);
        const cudaError_t e = pinned ? cudaHostAlloc(&p, want, cudaHostAllocDefault) : cudaMalloc(&p, want);
        if (e != cudaSuccess) {
            p = nullptr;
            return make_error(ErrorCode::kDevice, std::string("hqq cuda: cannot allocate ") + std::to_string(want) +
                                                      " bytes for " + what + ": " + cudaGetErrorString(e));
        }
        n = want;
        return ok_status();
    }
    void release() {
        if (p) pinned ? cudaFreeHost(p) : cudaFree(p);
        p = nullptr;
        n = 0;
    }
    template <class T> T* as() const { return static_cast<T*>(p); }
};

// dst[0, n) = src[0, n) on the pool (one thread does not saturate host memory bandwidth).
void parallel_copy(void* dst, const void* src, size_t n, ThreadPool& pool) {
    constexpr int64_t kGrain = 512 << 10;
    const int64_t blocks = int64_t((n + kGrain - 1) / kGrain);
    pool.parallel_for(blocks, [&](int64_t b, int64_t e, int) {
        const size_t lo = size_t(b) * kGrain, hi = std::min(n, size_t(e) * kGrain);
        std::memcpy(static_cast<char*>(dst) + lo, static_cast<const char*>(src) + lo, hi - lo);
    });
}

size_t round16(size_t n) {
    return (n + 15) / 16 * 16;
}

std::mutex g_times_mutex;
PhaseTimes g_times;
std::atomic<bool> g_staged{true};

using HostClock = std::chrono::steady_clock;
double since(HostClock::time_point t0) {
    return std::chrono::duration<double>(HostClock::now() - t0).count();
}

} // namespace

struct Solver::Impl {
    int index = 0;
    cudaStream_t stream = nullptr;
    cudaEvent_t staged[2] = {nullptr, nullptr}; // the DMA out of stage[k] has finished
    cudaEvent_t marks[4] = {};                  // upload start, upload end, kernels end, download end
    double copy_in_s = 0.0;                     // host seconds copying into staging, this call
    DevBuf stage[2], out_host, w_dev, s_inv, zero, codes, packed, scale_out, zero_out, block_err, block_stats, state,
        errors;

    ~Impl() {
        for (DevBuf* b : {&stage[0], &stage[1], &out_host, &w_dev, &s_inv, &zero, &codes, &packed, &scale_out,
                          &zero_out, &block_err, &block_stats, &state, &errors})
            b->release();
        for (cudaEvent_t e : staged)
            if (e) cudaEventDestroy(e);
        for (cudaEvent_t e : marks)
            if (e) cudaEventDestroy(e);
        if (stream) cudaStreamDestroy(stream);
    }

    // Host weights -> w_dev through two pinned chunks: the copy into one overlaps the DMA out of the other.
    Status upload(const void* w, size_t bytes, ThreadPool& pool) {
        LOWBIT_TRY(w_dev.reserve(bytes, "the weight"));
        copy_in_s = 0.0;
        if (!g_staged.load()) {
            HQQ_CUDA_TRY(cudaMemcpyAsync(w_dev.p, w, bytes, cudaMemcpyHostToDevice, stream),
                         "copying the weight to the device");
            return ok_status();
        }
        for (size_t off = 0, k = 0; off < bytes; off += kStageBytes, ++k) {
            const size_t len = std::min(kStageBytes, bytes - off);
            HQQ_CUDA_TRY(cudaEventSynchronize(staged[k % 2]), "waiting for a staging buffer");
            const auto t0 = HostClock::now();
            parallel_copy(stage[k % 2].p, static_cast<const char*>(w) + off, len, pool);
            copy_in_s += since(t0);
            HQQ_CUDA_TRY(cudaMemcpyAsync(w_dev.as<char>() + off, stage[k % 2].p, len, cudaMemcpyHostToDevice, stream),
                         "copying the weight to the device");
            HQQ_CUDA_TRY(cudaEventRecord(staged[k % 2], stream), "cudaEventRecord");
        }
        return ok_status();
    }

    // init, the iterations (each: group kernel + fold), final codes; all queued on `stream`.
    template <class T> Status launch(const Problem& p, const Groups& gr, int64_t n_blocks) {
        const T* w = w_dev.as<const T>();
        const float max_q = float((1 << p.nbits) - 1);
        SolveState* st = state.as<SolveState>();
        const unsigned grid = unsigned(n_blocks);
        init_kernel<T><<<grid, kThreads, 0, stream>>>(w, gr, max_q, p.round_zero ? 1 : 0, s_inv.as<float>(),
                                                      zero.as<float>(), st);
        HQQ_CUDA_TRY(cudaGetLastError(), "init_kernel");
        if (p.optimize) {
            double beta = p.beta;
            const float pm1 = p.lp_norm - 1.0f;
            const double numel = double(gr.R) * double(gr.C);
            for (int it = 0; it < p.iters; ++it) { // the CPU solver's beta / threshold sequence, computed alike
                const float inv_beta = float(1.0 / beta);
                const float thresh = float(std::pow(double(inv_beta), 1.0 / (2.0 - double(p.lp_norm))) * (1.0 - 1e-4));
                if (p.axis == 1) {
                    iterate_axis1<T><<<grid, kThreads, 0, stream>>>(w, gr, max_q, s_inv.as<float>(), zero.as<float>(),
                                                                    inv_beta, pm1, thresh, st, block_err.as<double>());
                } else {
                    iterate_axis0<T><<<grid, kThreads, 0, stream>>>(w, gr, max_q, s_inv.as<float>(), zero.as<float>(),
                                                                    inv_beta, pm1, thresh, st, block_err.as<double>());
                }
                HQQ_CUDA_TRY(cudaGetLastError(), "iterate kernel");
                fold_kernel<<<1, kFoldThreads, 0, stream>>>(block_err.as<double>(), n_blocks, numel, it, st,
                                                            errors.as<double>());
                HQQ_CUDA_TRY(cudaGetLastError(), "fold_kernel");
                beta *= p.kappa;
            }
        }
        codes_kernel<T><<<grid, kThreads, 0, stream>>>(w, gr, max_q, s_inv.as<float>(), zero.as<float>(),
                                                       p.meta_f16 ? 1 : 0, codes.as<uint8_t>(), scale_out.as<float>(),
                                                       zero_out.as<float>(), block_stats.as<double>());
        HQQ_CUDA_TRY(cudaGetLastError(), "codes_kernel");
        return ok_status();
    }
};

Solver::Solver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Solver::~Solver() = default;

Result<std::unique_ptr<Solver>> Solver::create(int index) {
    int n = 0;
    HQQ_CUDA_TRY(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
    if (index < 0 || index >= n)
        return make_error(ErrorCode::kDevice, "hqq cuda: device " + std::to_string(index) + " does not exist (" +
                                                  std::to_string(n) + " visible)");
    auto impl = std::make_unique<Impl>();
    impl->index = index;
    HQQ_CUDA_TRY(cudaSetDevice(index), "cudaSetDevice(" + std::to_string(index) + ")");
    HQQ_CUDA_TRY(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    for (cudaEvent_t& e : impl->staged) {
        HQQ_CUDA_TRY(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
        HQQ_CUDA_TRY(cudaEventRecord(e, impl->stream), "cudaEventRecord");
    }
    for (cudaEvent_t& e : impl->marks) HQQ_CUDA_TRY(cudaEventCreate(&e), "cudaEventCreate");
    for (DevBuf* b : {&impl->stage[0], &impl->stage[1], &impl->out_host}) b->pinned = true;
    LOWBIT_TRY(impl->stage[0].reserve(kStageBytes, "pinned staging"));
    LOWBIT_TRY(impl->stage[1].reserve(kStageBytes, "pinned staging"));
    return std::unique_ptr<Solver>(new Solver(std::move(impl)));
}

Status Solver::solve(const void* w, const Problem& p, ThreadPool& pool, Output* out) {
    const auto t_start = HostClock::now();
    Impl& d = *impl_;
    HQQ_CUDA_TRY(cudaSetDevice(d.index), "cudaSetDevice");
    const Groups gr{p.R, p.C, p.n_groups, p.group_elems, p.axis};
    const int64_t numel = p.R * p.C;
    const int64_t n_blocks = (p.n_groups + kThreads - 1) / kThreads;
    const size_t groups_f32 = sizeof(float) * size_t(p.n_groups);
    const int iters = p.optimize ? p.iters : 0;
    LOWBIT_TRY(d.s_inv.reserve(groups_f32, "s_inv"));
    LOWBIT_TRY(d.zero.reserve(groups_f32, "zero"));
    LOWBIT_TRY(d.scale_out.reserve(groups_f32, "scale"));
    LOWBIT_TRY(d.zero_out.reserve(groups_f32, "zero"));
    LOWBIT_TRY(d.codes.reserve(size_t(numel), "codes"));
    LOWBIT_TRY(d.packed.reserve(size_t(p.packed_bytes), "packed codes"));
    LOWBIT_TRY(d.block_err.reserve(sizeof(double) * size_t(n_blocks), "block errors"));
    LOWBIT_TRY(d.block_stats.reserve(4 * sizeof(double) * size_t(n_blocks), "block stats"));
    LOWBIT_TRY(d.state.reserve(sizeof(SolveState), "state"));
    LOWBIT_TRY(d.errors.reserve(sizeof(double) * size_t(std::max(iters, 1)), "errors"));
    // Pinned result area: packed | scale | zero | block stats | state | errors.
    const size_t off_scale = round16(size_t(p.packed_bytes));
    const size_t off_zero = off_scale + groups_f32;
    const size_t off_stats = round16(off_zero + groups_f32);
    const size_t off_state = off_stats + 4 * sizeof(double) * size_t(n_blocks);
    const size_t off_errors = round16(off_state + sizeof(SolveState));
    LOWBIT_TRY(d.out_host.reserve(off_errors + sizeof(double) * size_t(std::max(iters, 1)), "pinned results"));

    const SolveState init{1e4, 0, 0, ~0ull};
    HQQ_CUDA_TRY(cudaMemcpyAsync(d.state.p, &init, sizeof(init), cudaMemcpyHostToDevice, d.stream), "state upload");
    const size_t in_bytes = size_t(numel) * (p.dtype == DType::kF32 ? 4 : 2);
    HQQ_CUDA_TRY(cudaEventRecord(d.marks[0], d.stream), "cudaEventRecord");
    LOWBIT_TRY(d.upload(w, in_bytes, pool));
    HQQ_CUDA_TRY(cudaEventRecord(d.marks[1], d.stream), "cudaEventRecord");
    if (p.dtype == DType::kF32) {
        LOWBIT_TRY(d.launch<float>(p, gr, n_blocks));
    } else if (p.dtype == DType::kF16) {
        LOWBIT_TRY(d.launch<__half>(p, gr, n_blocks));
    } else {
        LOWBIT_TRY(d.launch<__nv_bfloat16>(p, gr, n_blocks));
    }
    const uint8_t* wq_dev = d.codes.as<uint8_t>();
    if (p.nbits != 8) {
        const int64_t n_out = p.nbits == 3 ? p.packed_bytes / 4 : p.packed_bytes;
        pack_kernel<<<unsigned((n_out + kThreads - 1) / kThreads), kThreads, 0, d.stream>>>(
            d.codes.as<uint8_t>(), p.R, p.C, p.nbits, d.packed.as<uint8_t>());
        HQQ_CUDA_TRY(cudaGetLastError(), "pack_kernel");
        wq_dev = d.packed.as<uint8_t>();
    }
    HQQ_CUDA_TRY(cudaEventRecord(d.marks[2], d.stream), "cudaEventRecord");
    char* h = d.out_host.as<char>();
    const auto d2h = [&](size_t off, const void* src, size_t n) {
        return cudaMemcpyAsync(h + off, src, n, cudaMemcpyDeviceToHost, d.stream);
    };
    HQQ_CUDA_TRY(d2h(0, wq_dev, size_t(p.packed_bytes)), "copying codes back");
    HQQ_CUDA_TRY(d2h(off_scale, d.scale_out.p, groups_f32), "copying scales back");
    HQQ_CUDA_TRY(d2h(off_zero, d.zero_out.p, groups_f32), "copying zeros back");
    HQQ_CUDA_TRY(d2h(off_stats, d.block_stats.p, 4 * sizeof(double) * size_t(n_blocks)), "copying stats back");
    HQQ_CUDA_TRY(d2h(off_state, d.state.p, sizeof(SolveState)), "copying state back");
    if (iters > 0) HQQ_CUDA_TRY(d2h(off_errors, d.errors.p, sizeof(double) * size_t(iters)), "copying errors back");
    HQQ_CUDA_TRY(cudaEventRecord(d.marks[3], d.stream), "cudaEventRecord");
    HQQ_CUDA_TRY(cudaStreamSynchronize(d.stream), "hqq solve on the device");
    const auto t_synced = HostClock::now();
    float ms[3] = {};
    for (int i = 0; i < 3; ++i)
        HQQ_CUDA_TRY(cudaEventElapsedTime(&ms[i], d.marks[i], d.marks[i + 1]), "cudaEventElapsedTime");

    SolveState st;
    std::memcpy(&st, h + off_state, sizeof(st));
    if (st.bad_index != ~0ull) {
        out->bad_index = int64_t(st.bad_index);
        return ok_status();
    }
    const double* errs = reinterpret_cast<const double*>(h + off_errors);
    out->errors.assign(errs, errs + (iters > 0 ? st.n_iters : 0));
    out->packed.resize(size_t(p.packed_bytes));
    parallel_copy(out->packed.data(), h, size_t(p.packed_bytes), pool);
    out->scale.resize(size_t(p.n_groups));
    out->zero.resize(size_t(p.n_groups));
    parallel_copy(out->scale.data(), h + off_scale, groups_f32, pool);
    parallel_copy(out->zero.data(), h + off_zero, groups_f32, pool);
    const double* bs = reinterpret_cast<const double*>(h + off_stats);
    for (int64_t b = 0; b < n_blocks; ++b) {
        out->sq_err += bs[4 * b];
        out->max_abs = std::max(out->max_abs, bs[4 * b + 1]);
        out->sum += bs[4 * b + 2];
        out->sum_sq += bs[4 * b + 3];
    }
    std::lock_guard<std::mutex> lock(g_times_mutex);
    g_times.copy_in += d.copy_in_s;
    g_times.h2d += 1e-3 * ms[0];
    g_times.kernels += 1e-3 * ms[1];
    g_times.d2h += 1e-3 * ms[2];
    g_times.host_out += since(t_synced);
    g_times.total += since(t_start);
    ++g_times.calls;
    return ok_status();
}

PhaseTimes phase_times() {
    std::lock_guard<std::mutex> lock(g_times_mutex);
    return g_times;
}
void reset_phase_times() {
    std::lock_guard<std::mutex> lock(g_times_mutex);
    g_times = PhaseTimes{};
}
void set_staged_upload(bool staged) {
    g_staged.store(staged);
}

bool compiled() {
    return true;
}

Status available() {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
        return make_error(ErrorCode::kDevice, std::string("no usable CUDA device: ") + cudaGetErrorString(e));
    if (n < 1) return make_error(ErrorCode::kDevice, "no CUDA device is visible");
    return ok_status();
}

std::string label() {
    if (!available().ok()) return {};
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return {};
    return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
           std::to_string(prop.totalGlobalMem >> 30) + " GiB)";
}

} // namespace lowbit::quantize::hqq::device
