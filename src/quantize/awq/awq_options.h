// SPDX-License-Identifier: MIT
// AWQ options and the group parameters of a quantized matrix: the part of awq.h that the CUDA steps (awq_cuda.cu,
// compiled as C++17 by nvcc) share with the CPU functions.
#pragma once

#include "core/error.h"

#include <cstdint>
#include <vector>

namespace lowbit::quantize::awq {

struct AwqOptions {
    int bits = 4;                 // w_bit: 2, 3, 4 or 8
    int64_t group_size = 128;     // q_group_size; divides n_in; -1 = one group per row
    bool zero_point = true;       // asymmetric [0, 2^b-1] with a zero (AutoAWQ default); false: [-2^(b-1), 2^(b-1)-1]
    int n_grid = 20;              // scale search: ratio = i / n_grid for i in [0, n_grid); clip: shrink step 1/n_grid
    bool duo_scaling = true;      // scales = x̄^r / (w̄^(1-r) + 1e-4) (AutoAWQ >= 0.2); false: x̄^r
    double max_shrink = 0.5;      // clip: max_val = max|w| * (1 - i/n_grid) for i < max_shrink * n_grid
    int64_t n_sample_token = 512; // clip: every (n_tokens / n_sample_token)-th token is used
};

// kUsage with a message: bits not in {2,3,4,8}, group size not -1 and not dividing n_in, n_grid < 1,
// max_shrink outside [0, 1), n_sample_token < 1.
Status validate(const AwqOptions& options, int64_t n_in);

// Group parameters of a pseudo-quantized matrix.
struct GroupQuant {
    int64_t n_rows = 0, n_cols = 0, n_groups = 0;
    std::vector<uint8_t> codes; // [n_rows, n_cols] in [0, 2^b) (symmetric codes are stored offset by 2^(b-1))
    std::vector<float> scales;  // [n_rows, n_groups]
    std::vector<int32_t> zeros; // [n_rows, n_groups] in [0, 2^b) (symmetric: 2^(b-1))
};

} // namespace lowbit::quantize::awq
