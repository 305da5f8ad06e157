// SPDX-License-Identifier: MIT
// calib_layer.h for builds without CUDA: creating a runner or a device Hessian reports that CUDA is not compiled in.
#include "kernel/cuda/calib_layer.h"

#ifndef LOWBIT_HAVE_CUDA
namespace lowbit::kernel::cuda {
namespace {
Error no_cuda(const char* what) {
    return make_error(ErrorCode::kUnsupported,
                      std::string(what) + ": this lowbit was built without CUDA (configure with -DLOWBIT_CUDA=ON)");
}
} // namespace

Result<std::unique_ptr<CalibLayer>> CalibLayer::create(const LayerDims&, int64_t, int64_t, Precision) {
    return no_cuda("GPU calibration layer");
}

Result<std::unique_ptr<DeviceHessian>> DeviceHessian::create(int64_t, void*, HessianMath) {
    return no_cuda("GPU Hessian");
}

Result<std::shared_ptr<float>> device_floats(int64_t) {
    return no_cuda("device allocation");
}

Status copy_device_to_host(void*, const void*, uint64_t) {
    return no_cuda("device to host copy");
}

Status copy_host_to_device(void*, const void*, uint64_t) {
    return no_cuda("host to device copy");
}

} // namespace lowbit::kernel::cuda
#endif
