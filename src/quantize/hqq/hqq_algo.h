// SPDX-License-Identifier: MIT
// The "hqq" row of algo_list.h: reads bits, group_size, axis, round_zero, optimize from SchemeParams.
#pragma once

#include "quantize/algo_list.h"

namespace lowbit::quantize::hqq {

Result<QuantizeOutput> quantize_hqq_algo(const QuantizeRequest& request);

} // namespace lowbit::quantize::hqq
