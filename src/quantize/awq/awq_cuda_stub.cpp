// SPDX-License-Identifier: MIT
// awq_cuda.h for builds without CUDA: the device steps report that CUDA is not compiled in.
#include "quantize/awq/awq_cuda.h"

#ifndef LOWBIT_HAVE_CUDA
namespace lowbit::quantize::awq {

Result<std::unique_ptr<AwqCuda>> AwqCuda::create(void*, bool) {
    return make_error(ErrorCode::kUnsupported,
                      "AWQ on the GPU: this lowbit was built without CUDA (configure with -DLOWBIT_CUDA=ON)");
}

} // namespace lowbit::quantize::awq
#endif
