// SPDX-License-Identifier: MIT
// CUDA implementation of the back-end smoke functions (cuda_backend.h).
#include "kernel/cuda/cuda_backend.h"

#include <cuda_runtime.h>
#include <string>

// LOWBIT_CUDA_TRY: turns a CUDA error into a Result error naming the call.
#define LOWBIT_CUDA_TRY(call, what)                                                                                    \
    do {                                                                                                               \
        cudaError_t err_ = (call);                                                                                     \
        if (err_ != cudaSuccess)                                                                                       \
            return ::lowbit::make_error(::lowbit::ErrorCode::kDevice,                                                  \
                                        std::string(what) + ": " + cudaGetErrorString(err_));                          \
    } while (0)

namespace lowbit::kernel::cuda {
namespace {

__global__ void scale_shift_kernel(float* x, int64_t n, float alpha, float beta) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) x[i] = alpha * x[i] + beta;
}

} // namespace

bool compiled_with_cuda() {
    return true;
}

Result<int> device_count() {
    int n = 0;
    LOWBIT_CUDA_TRY(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
    return n;
}

Result<DeviceInfo> device_info(int index) {
    cudaDeviceProp p{};
    LOWBIT_CUDA_TRY(cudaGetDeviceProperties(&p, index), "cudaGetDeviceProperties(" + std::to_string(index) + ")");
    DeviceInfo d;
    d.index = index;
    d.name = p.name;
    d.sm_major = p.major;
    d.sm_minor = p.minor;
    d.total_bytes = p.totalGlobalMem;
    return d;
}

Status scale_shift_f32(float* x, int64_t n, float alpha, float beta) {
    if (n <= 0) return ok_status();
    const std::string what = "scale_shift_f32 (n=" + std::to_string(n) + ")";
    float* d = nullptr;
    LOWBIT_CUDA_TRY(cudaMalloc(&d, sizeof(float) * size_t(n)), what + " cudaMalloc");
    cudaError_t err = cudaMemcpy(d, x, sizeof(float) * size_t(n), cudaMemcpyHostToDevice);
    if (err == cudaSuccess) {
        const int threads = 256;
        const int64_t blocks = (n + threads - 1) / threads;
        scale_shift_kernel<<<static_cast<unsigned>(blocks), threads>>>(d, n, alpha, beta);
        err = cudaGetLastError();
    }
    if (err == cudaSuccess) err = cudaMemcpy(x, d, sizeof(float) * size_t(n), cudaMemcpyDeviceToHost);
    cudaFree(d);
    LOWBIT_CUDA_TRY(err, what);
    return ok_status();
}

} // namespace lowbit::kernel::cuda
