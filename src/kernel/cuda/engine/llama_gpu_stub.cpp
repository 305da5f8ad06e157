// SPDX-License-Identifier: MIT
// llama_gpu.h for builds without CUDA: the engine reports that CUDA is not compiled in.
#include "kernel/cuda/engine/llama_gpu.h"

#ifndef LOWBIT_HAVE_CUDA
namespace lowbit::kernel::cuda {
namespace {
Error no_cuda() {
    return make_error(
        ErrorCode::kUnsupported,
        "this lowbit was built without CUDA, so --device cuda cannot run (configure with -DLOWBIT_CUDA=ON)");
}
} // namespace

bool gpu_engine_supports(DType) {
    return false;
}
bool gpu_gemv_uses_q8_activations(DType) {
    return false;
}
Result<std::unique_ptr<LlamaGpu>> LlamaGpu::create(const GpuModelDesc&, const GpuEngineOptions&) {
    return no_cuda();
}
Status gpu_matmul(const GpuWeight&, const float*, int64_t, float*, bool) {
    return no_cuda();
}
Result<double> gpu_matmul_time_us(const GpuWeight&, int64_t, int, bool, const float*) {
    return no_cuda();
}

} // namespace lowbit::kernel::cuda
#endif
