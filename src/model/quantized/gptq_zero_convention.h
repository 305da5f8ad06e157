// SPDX-License-Identifier: MIT
// Which GPTQ zero-point convention a checkpoint's data follows (v1 "gptq" stores zero - 1, "gptq_v2" stores the
// zero), judged from the histogram of the stored (packed) zero points of all its modules:
//   symmetric: every stored zero is 2^(b-1)-1 (v1) or 2^(b-1) (v2);
//   asymmetric: zero = round(-min/scale) centers on (2^b-1)/2 for sign-symmetric weights; the mean read the right
//   way lands within 0.3 step of it, the wrong reading (off by one step, minus wraps) more than 0.7 away, and the
//   mean's standard error is under 0.1 step (8-bit zeros of small models spread too widely to decide).
// Anything else is inconclusive (no format), and the loader trusts the config.
#pragma once

#include "scheme/gptq/gptq_pack.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace lowbit::model::quantized {

struct ZeroConventionVerdict {
    std::optional<scheme::gptq::GptqFormat> format; // empty: inconclusive
    std::string evidence;                           // for logs and error messages: counts, means, the rule
};

// hist[z] = how many stored zero points equal z, z in [0, 2^bits).
ZeroConventionVerdict judge_zero_convention(std::span<const int64_t> hist, int bits);

} // namespace lowbit::model::quantized
