// SPDX-License-Identifier: MIT
// cuda_backend.h helpers that only call the backend's own functions (shared by the CUDA and the stub builds).
#include "kernel/cuda/cuda_backend.h"

namespace lowbit::kernel::cuda {

std::string cuda_unavailable_reason() {
    if (!compiled_with_cuda()) return "built without CUDA";
    auto n = device_count();
    if (!n.ok() || *n == 0) return "no CUDA device: " + (n.ok() ? std::string("0 devices") : n.error().message);
    return {};
}

} // namespace lowbit::kernel::cuda
