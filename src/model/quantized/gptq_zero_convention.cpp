// SPDX-License-Identifier: MIT
// The zero-point convention judge (see gptq_zero_convention.h).
#include "model/quantized/gptq_zero_convention.h"

#include "core/check.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace lowbit::model::quantized {

using scheme::gptq::GptqFormat;

ZeroConventionVerdict judge_zero_convention(std::span<const int64_t> hist, int bits) {
    ZeroConventionVerdict v;
    const int64_t levels = int64_t(1) << bits, half = levels / 2;
    LOWBIT_CHECK(bits >= 2 && bits <= 8 && int64_t(hist.size()) == levels);
    int64_t n = 0, n_values = 0;
    // Sums of the zero read as gptq_v2 (stored) and as gptq (stored + 1, wrapping), and of its square.
    double sum_v2 = 0, sum_v1 = 0, sq_v2 = 0, sq_v1 = 0;
    for (int64_t z = 0; z < levels; ++z) {
        const double c = double(hist[size_t(z)]), z1 = double((z + 1) % levels);
        n += hist[size_t(z)], n_values += hist[size_t(z)] > 0;
        sum_v2 += c * double(z), sq_v2 += c * double(z) * double(z);
        sum_v1 += c * z1, sq_v1 += c * z1 * z1;
    }
    if (n == 0) {
        v.evidence = "no zero points";
        return v;
    }
    if (n_values == 1) { // symmetric: one value everywhere
        int64_t z = 0;
        while (hist[size_t(z)] != n) ++z;
        std::string reading = "neither symmetric convention";
        if (z == half - 1) {
            v.format = GptqFormat::kV1;
            reading = fmt::format("= 2^(bits-1)-1, symmetric gptq (v1) storing zero {} minus 1", half);
        } else if (z == half) {
            v.format = GptqFormat::kV2;
            reading = fmt::format("= 2^(bits-1), symmetric gptq_v2 storing zero {} as is", half);
        }
        v.evidence = fmt::format("all {} stored zero points are {} {}", n, z, reading);
        return v;
    }
    // Asymmetric: zero = round(-min/scale) centers on (2^b-1)/2 for sign-symmetric weights; the right reading
    // lands there, the wrong one about one step away. Decided only when the mean is sharp (standard error < 0.1
    // step) and one reading is near the center while the other is clearly off; 8-bit zeros spread so widely that
    // small models stay inconclusive.
    const double center = double(levels - 1) / 2.0, dn = double(n);
    const double m1 = sum_v1 / dn, m2 = sum_v2 / dn;
    const double se1 = std::sqrt(std::max(0.0, sq_v1 / dn - m1 * m1) / dn);
    const double se2 = std::sqrt(std::max(0.0, sq_v2 / dn - m2 * m2) / dn);
    const double d1 = std::fabs(m1 - center), d2 = std::fabs(m2 - center);
    if (d1 < 0.3 && d2 > 0.7 && se1 < 0.1) v.format = GptqFormat::kV1;
    if (d2 < 0.3 && d1 > 0.7 && se2 < 0.1) v.format = GptqFormat::kV2;
    v.evidence = fmt::format("{} asymmetric zero points average {:.3f} (+/- {:.3f}) read as gptq (v1) and {:.3f} "
                             "(+/- {:.3f}) read as gptq_v2; asymmetric zeros center on (2^bits-1)/2 = {:.1f}",
                             n, m1, se1, m2, se2, center);
    return v;
}

} // namespace lowbit::model::quantized
