// SPDX-License-Identifier: MIT
// cuda_backend.h for builds without CUDA: every call reports that CUDA is not compiled in.
#include "kernel/cuda/cuda_backend.h"

#ifndef LOWBIT_HAVE_CUDA
namespace lowbit::kernel::cuda {
namespace {
Error no_cuda() {
    return make_error(ErrorCode::kUnsupported, "this lowbit was built without CUDA (configure with -DLOWBIT_CUDA=ON)");
}
} // namespace

bool compiled_with_cuda() {
    return false;
}
Result<int> device_count() {
    return no_cuda();
}
Result<DeviceInfo> device_info(int) {
    return no_cuda();
}
Status scale_shift_f32(float*, int64_t, float, float) {
    return no_cuda();
}

} // namespace lowbit::kernel::cuda
#endif
