// SPDX-License-Identifier: MIT
// HF-style half of `lowbit quantize` (being written): safetensors directory + quantization_config out.
#include "pipeline/quantize/quantize.h"

namespace lowbit::pipeline {

Result<QuantizeJobReport> quantize_to_hf(const QuantizeJobOptions& o) {
    return make_error(ErrorCode::kUnsupported,
                      "safetensors output for '" + o.method + "' is not available in this build");
}

} // namespace lowbit::pipeline
