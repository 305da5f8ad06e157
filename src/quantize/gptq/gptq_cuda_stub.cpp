// SPDX-License-Identifier: MIT
// gptq_cuda.h for builds without CUDA: every entry point reports that CUDA is not compiled in.
#include "quantize/gptq/gptq_cuda.h"

#ifndef LOWBIT_HAVE_CUDA
namespace lowbit::quantize::gptq {
namespace {
Error no_cuda() {
    return make_error(ErrorCode::kUnsupported,
                      "GPTQ on CUDA: this lowbit was built without CUDA (configure with -DLOWBIT_CUDA=ON)");
}
} // namespace

struct GptqCudaSolver::Impl {};

GptqCudaSolver::GptqCudaSolver() = default;
GptqCudaSolver::~GptqCudaSolver() = default;
Result<std::unique_ptr<GptqCudaSolver>> GptqCudaSolver::create() {
    return no_cuda();
}
Status GptqCudaSolver::prepare(const double*, int64_t, const GptqOptions&) {
    return no_cuda();
}
Result<GptqResult> GptqCudaSolver::quantize_prepared(float*, int64_t, const GptqOptions&, bool) {
    return no_cuda();
}
Result<GptqResult> GptqCudaSolver::quantize(float*, int64_t, int64_t, const double*, const GptqOptions&, bool) {
    return no_cuda();
}
Status GptqCudaSolver::set_stream(void*) {
    return no_cuda();
}
const GptqCudaTimes& GptqCudaSolver::times() const {
    static const GptqCudaTimes none;
    return none;
}
uint64_t GptqCudaSolver::workspace_bytes() const {
    return 0;
}
Result<GptqResult> gptq_quantize_cuda(const float*, int64_t, int64_t, const std::vector<double>&, const GptqOptions&,
                                      bool) {
    return no_cuda();
}
Result<uint64_t> cuda_used_bytes() {
    return no_cuda();
}

} // namespace lowbit::quantize::gptq
#endif
