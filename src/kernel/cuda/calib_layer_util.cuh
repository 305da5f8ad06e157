// SPDX-License-Identifier: MIT
// CUDA-only helpers of the calibration runner (included by .cu files only): status macros that turn CUDA and
// cuBLAS failures into Result errors naming the operation, and an owning device buffer.
#pragma once

#include "core/error.h"

#include <cstdint>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <string>
#include <utility>

namespace lowbit::kernel::cuda {

inline Error cuda_error(cudaError_t err, const std::string& what) {
    const ErrorCode code = err == cudaErrorMemoryAllocation ? ErrorCode::kOutOfMemory : ErrorCode::kDevice;
    return make_error(code, what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

inline Error cublas_error(cublasStatus_t st, const std::string& what) {
    const ErrorCode code = st == CUBLAS_STATUS_ALLOC_FAILED ? ErrorCode::kOutOfMemory : ErrorCode::kDevice;
    return make_error(code, what + ": cuBLAS " + cublasGetStatusName(st) + " (" + cublasGetStatusString(st) + ")");
}

} // namespace lowbit::kernel::cuda

// CALIB_CUDA_TRY(call, what): return a Result error naming `what` when a CUDA call fails.
#define CALIB_CUDA_TRY(call, what)                                                                                     \
    do {                                                                                                               \
        const cudaError_t calib_err_ = (call);                                                                         \
        if (calib_err_ != cudaSuccess) return ::lowbit::kernel::cuda::cuda_error(calib_err_, (what));                  \
    } while (0)

// CALIB_LAUNCH_CHECK(what): the launch error of the kernel just enqueued.
#define CALIB_LAUNCH_CHECK(what) CALIB_CUDA_TRY(cudaGetLastError(), std::string("kernel ") + (what))

#define CALIB_CUBLAS_TRY(call, what)                                                                                   \
    do {                                                                                                               \
        const cublasStatus_t calib_st_ = (call);                                                                       \
        if (calib_st_ != CUBLAS_STATUS_SUCCESS) return ::lowbit::kernel::cuda::cublas_error(calib_st_, (what));        \
    } while (0)

namespace lowbit::kernel::cuda {

// An owning device allocation of `count` elements of T (cudaMalloc / cudaFree). Move-only.
template <class T> class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            release();
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    ~DeviceBuffer() { release(); }

    // Frees the old buffer and allocates `count` elements (contents undefined). `name` goes into errors.
    Status alloc(int64_t count, const std::string& name) {
        release();
        if (count <= 0) return ok_status();
        const uint64_t bytes = uint64_t(count) * sizeof(T);
        void* p = nullptr;
        CALIB_CUDA_TRY(cudaMalloc(&p, bytes), "cudaMalloc of " + name + " (" + std::to_string(bytes) + " bytes)");
        p_ = static_cast<T*>(p);
        n_ = count;
        return ok_status();
    }
    // Grows to at least `count` elements (old contents are lost when it grows).
    Status reserve(int64_t count, const std::string& name) { return count <= n_ ? ok_status() : alloc(count, name); }
    void release() {
        if (p_) cudaFree(p_);
        p_ = nullptr;
        n_ = 0;
    }

    T* get() const { return p_; }
    int64_t size() const { return n_; }
    uint64_t bytes() const { return uint64_t(n_) * sizeof(T); }

  private:
    T* p_ = nullptr;
    int64_t n_ = 0;
};

} // namespace lowbit::kernel::cuda
