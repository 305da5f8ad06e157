// SPDX-License-Identifier: MIT
// hqq_cuda_device.h for builds without CUDA: no solver can be created, and every call says why.
#include "quantize/hqq/hqq_cuda_device.h"

#ifndef LOWBIT_HAVE_CUDA
namespace lowbit::quantize::hqq::device {
namespace {
Error no_cuda() {
    return make_error(ErrorCode::kUnsupported, "this lowbit was built without CUDA, so the HQQ solver cannot run on a "
                                               "GPU (configure with -DLOWBIT_CUDA=ON, or use --device cpu)");
}
} // namespace

struct Solver::Impl {};

bool compiled() {
    return false;
}
Status available() {
    return no_cuda();
}
std::string label() {
    return {};
}
PhaseTimes phase_times() {
    return {};
}
void reset_phase_times() {}
void set_staged_upload(bool) {}
Solver::Solver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Solver::~Solver() = default;
Result<std::unique_ptr<Solver>> Solver::create(int) {
    return no_cuda();
}
Status Solver::solve(const void*, const Problem&, ThreadPool&, Output*) {
    return no_cuda();
}

} // namespace lowbit::quantize::hqq::device
#endif
