// SPDX-License-Identifier: MIT
// Round-to-nearest algorithms (no search, no calibration): each quantizes with its scheme's reference rule,
// returns the records and the measured error. Rows "rtn", "int8", "nf4", "fp4" of algo_list.h.
#pragma once

#include "quantize/algo_list.h"

namespace lowbit::quantize::rtn {

Result<QuantizeOutput> quantize_int_group(const QuantizeRequest& request); // scheme/int_group
Result<QuantizeOutput> quantize_llm_int8(const QuantizeRequest& request);  // scheme/llm_int8
Result<QuantizeOutput> quantize_nf4(const QuantizeRequest& request);       // scheme/nf4, NF4 table
Result<QuantizeOutput> quantize_fp4(const QuantizeRequest& request);       // scheme/nf4, FP4 table

} // namespace lowbit::quantize::rtn
