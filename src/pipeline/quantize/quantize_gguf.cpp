// SPDX-License-Identifier: MIT
// GGUF half of `lowbit quantize` (being written): HF dir or GGUF in -> llama.cpp mix -> GGUF out.
#include "pipeline/quantize/quantize.h"

namespace lowbit::pipeline {

Result<QuantizeJobReport> quantize_to_gguf(const QuantizeJobOptions& o) {
    return make_error(ErrorCode::kUnsupported, "GGUF output for '" + o.method + "' is not available in this build");
}

} // namespace lowbit::pipeline
