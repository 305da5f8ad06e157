// SPDX-License-Identifier: MIT
// DeviceHessian on CUDA (calib_layer.h): per block of rows either widened to f64 + cuBLAS dsyrk (kF64), or split
// into TF32 hi + lo and multiplied on the tensor cores (kSplitTf32); both add into f64 sums kept as the upper
// triangle of a column-major [k, k] matrix, symmetrized and scaled by 2/n on demand.
#include "kernel/cuda/calib_layer.h"
#include "kernel/cuda/calib_layer_kernels.cuh"
#include "kernel/cuda/calib_layer_util.cuh"

#include <string>

namespace lowbit::kernel::cuda {
namespace {

constexpr int64_t kRowBlock = 4096; // rows widened per dsyrk: bounds the f64 scratch to kRowBlock * k

class CudaHessian final : public DeviceHessian {
  public:
    CudaHessian(int64_t k, cudaStream_t stream, HessianMath math)
        : k_(k), stream_(stream), own_stream_(stream == nullptr), math_(math) {}
    ~CudaHessian() override {
        if (blas_) cublasDestroy(blas_);
        if (own_stream_ && stream_) cudaStreamDestroy(stream_);
    }

    Status init() {
        if (own_stream_)
            CALIB_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
                           "DeviceHessian: cudaStreamCreate");
        CALIB_CUBLAS_TRY(cublasCreate(&blas_), "DeviceHessian: cublasCreate");
        CALIB_CUBLAS_TRY(cublasSetStream(blas_, stream_), "DeviceHessian: cublasSetStream");
        // kF64: no reduced-precision shortcut of any kind (the Hessian is the quantizer's ground truth).
        if (math_ == HessianMath::kF64)
            CALIB_CUBLAS_TRY(cublasSetMathMode(blas_, CUBLAS_PEDANTIC_MATH), "DeviceHessian: cublasSetMathMode");
        LOWBIT_TRY(sum_.alloc(k_ * k_, "Hessian sums [" + std::to_string(k_) + "^2] f64"));
        return reset();
    }

    Status add(const float* device_x, int64_t n_tokens) override {
        if (n_tokens < 0 || (n_tokens > 0 && !device_x))
            return make_error(ErrorCode::kUsage, "DeviceHessian::add: bad input (null pointer or negative rows)");
        if (n_tokens == 0) return ok_status();
        const int64_t block = std::min(n_tokens, kRowBlock);
        for (int64_t r0 = 0; r0 < n_tokens; r0 += block) {
            const int64_t nr = std::min(block, n_tokens - r0);
            if (math_ == HessianMath::kF64) {
                LOWBIT_TRY(add_f64(device_x + r0 * k_, nr, block));
            } else {
                LOWBIT_TRY(add_split(device_x + r0 * k_, nr, block));
            }
        }
        n_ += n_tokens;
        if (own_stream_) CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "DeviceHessian::add");
        return ok_status();
    }

    // Row-major x [nr, k] is column-major xᵀ [k, nr]: syrk(N) gives xᵀ x.
    Status add_f64(const float* x, int64_t nr, int64_t block) {
        LOWBIT_TRY(wide_.reserve(block * k_, "Hessian f64 input block"));
        const double one = 1.0;
        CALIB_CUDA_TRY(launch_widen_f64(x, wide_.get(), nr * k_, stream_), "DeviceHessian widen");
        CALIB_CUBLAS_TRY(cublasDsyrk(blas_, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, int(k_), int(nr), &one, wide_.get(),
                                     int(k_), &one, sum_.get(), int(k_)),
                         "DeviceHessian dsyrk (k=" + std::to_string(k_) + ", rows=" + std::to_string(nr) + ")");
        return ok_status();
    }

    // c = hiᵀhi and m = hiᵀlo (column-major [k, k], TF32 tensor cores, f32 sums), then sum += c + m + mᵀ.
    Status add_split(const float* x, int64_t nr, int64_t block) {
        LOWBIT_TRY(hi_.reserve(block * k_, "Hessian TF32 hi block"));
        LOWBIT_TRY(lo_.reserve(block * k_, "Hessian TF32 lo block"));
        LOWBIT_TRY(c_.reserve(k_ * k_, "Hessian f32 block product"));
        LOWBIT_TRY(m_.reserve(k_ * k_, "Hessian f32 cross product"));
        CALIB_CUDA_TRY(launch_split_tf32(x, hi_.get(), lo_.get(), nr * k_, stream_), "DeviceHessian split");
        const float one = 1.0f, zero = 0.0f;
        const std::string what = " (k=" + std::to_string(k_) + ", rows=" + std::to_string(nr) + ")";
        CALIB_CUBLAS_TRY(cublasGemmEx(blas_, CUBLAS_OP_N, CUBLAS_OP_T, int(k_), int(k_), int(nr), &one, hi_.get(),
                                      CUDA_R_32F, int(k_), hi_.get(), CUDA_R_32F, int(k_), &zero, c_.get(), CUDA_R_32F,
                                      int(k_), CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
                         "DeviceHessian hi^T hi GEMM" + what);
        CALIB_CUBLAS_TRY(cublasGemmEx(blas_, CUBLAS_OP_N, CUBLAS_OP_T, int(k_), int(k_), int(nr), &one, hi_.get(),
                                      CUDA_R_32F, int(k_), lo_.get(), CUDA_R_32F, int(k_), &zero, m_.get(), CUDA_R_32F,
                                      int(k_), CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
                         "DeviceHessian hi^T lo GEMM" + what);
        CALIB_CUDA_TRY(launch_accumulate_split(sum_.get(), c_.get(), m_.get(), k_, stream_),
                       "DeviceHessian accumulate");
        return ok_status();
    }

    Result<const double*> finish_device() override {
        if (n_ == 0) return make_error(ErrorCode::kBadInput, "DeviceHessian: no input rows were added");
        LOWBIT_TRY(done_.reserve(k_ * k_, "finished Hessian [" + std::to_string(k_) + "^2] f64"));
        CALIB_CUDA_TRY(launch_symmetrize_scale(sum_.get(), done_.get(), k_, 2.0 / double(n_), stream_),
                       "DeviceHessian symmetrize");
        CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "DeviceHessian::finish_device");
        return static_cast<const double*>(done_.get());
    }

    Status to_host(std::vector<double>& h) override {
        LOWBIT_ASSIGN_OR_RETURN(const double* d, finish_device());
        h.resize(size_t(k_ * k_));
        CALIB_CUDA_TRY(cudaMemcpy(h.data(), d, sizeof(double) * size_t(k_ * k_), cudaMemcpyDeviceToHost),
                       "DeviceHessian::to_host download");
        return ok_status();
    }

    Status reset() override {
        CALIB_CUDA_TRY(cudaMemsetAsync(sum_.get(), 0, sum_.bytes(), stream_), "DeviceHessian::reset");
        CALIB_CUDA_TRY(cudaStreamSynchronize(stream_), "DeviceHessian::reset");
        n_ = 0;
        return ok_status();
    }

    int64_t k() const override { return k_; }
    int64_t n_samples() const override { return n_; }
    uint64_t device_bytes() const override {
        return sum_.bytes() + done_.bytes() + wide_.bytes() + hi_.bytes() + lo_.bytes() + c_.bytes() + m_.bytes();
    }

  private:
    int64_t k_ = 0, n_ = 0;
    cudaStream_t stream_ = nullptr;
    bool own_stream_ = true;
    HessianMath math_ = HessianMath::kF64;
    cublasHandle_t blas_ = nullptr;
    DeviceBuffer<double> sum_;    // [k, k] column-major, upper triangle valid
    DeviceBuffer<double> done_;   // [k, k] finished, full symmetric
    DeviceBuffer<double> wide_;   // kF64: [<= kRowBlock, k] widened inputs
    DeviceBuffer<float> hi_, lo_; // kSplitTf32: [<= kRowBlock, k] split inputs
    DeviceBuffer<float> c_, m_;   // kSplitTf32: [k, k] column-major block products
};

} // namespace

Result<std::unique_ptr<DeviceHessian>> DeviceHessian::create(int64_t k, void* stream, HessianMath math) {
    if (k <= 0) return make_error(ErrorCode::kUsage, "DeviceHessian::create: k must be > 0, got " + std::to_string(k));
    auto h = std::make_unique<CudaHessian>(k, static_cast<cudaStream_t>(stream), math);
    LOWBIT_TRY(h->init());
    return std::unique_ptr<DeviceHessian>(std::move(h));
}

} // namespace lowbit::kernel::cuda
