// SPDX-License-Identifier: MIT
// The CUDA back end as seen from C++ without CUDA headers (rooms above kernel/ never include them).
// Built from cuda_backend.cu when LOWBIT_CUDA is on, from cuda_backend_stub.cpp otherwise; the stub
// answers kUnsupported so callers and tests can skip cleanly on machines without a GPU.
#pragma once

#include "core/error.h"

#include <cstdint>
#include <string>

namespace lowbit::kernel::cuda {

struct DeviceInfo {
    int index = 0;
    std::string name;
    int sm_major = 0, sm_minor = 0;
    uint64_t total_bytes = 0;
};

// Whether this build has CUDA kernels at all.
bool compiled_with_cuda();
// Number of visible devices; kUnsupported without CUDA, kDevice when the driver is missing or fails.
Result<int> device_count();
// Why no CUDA device can be used here ("built without CUDA", "no CUDA device: …"); empty when one can (GPU tests
// skip with this text).
std::string cuda_unavailable_reason();
Result<DeviceInfo> device_info(int index);
// Trivial device kernel used as a smoke test of the toolchain and the driver: x[i] = alpha * x[i] + beta
// for n floats of host memory (copied to the device and back). Errors name the kernel and the size.
Status scale_shift_f32(float* x, int64_t n, float alpha, float beta);

} // namespace lowbit::kernel::cuda
