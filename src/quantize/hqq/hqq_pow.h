// SPDX-License-Identifier: MIT
// lp_pow(a, e) = float(a^e) for the HQQ lp shrink, bit-identical on the CPU and on CUDA devices: it uses only
// IEEE double +, -, *, / (each rounded once; on the device through the _rn intrinsics, so nvcc cannot fuse them
// into FMAs; the CPU build targets baseline x86-64/no FMA contraction, like the rest of the solver). Libm's powf
// differs between the host (glibc, even per CPU variant) and the device, which made the two solvers drift apart
// by ulps wherever the shrink is active. Accuracy ~1e-15 relative, so the result is the correctly rounded power
// except within ~1e-15 of an f32 rounding boundary. Seen by nvcc (C++17) and by the C++20 rooms.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define LOWBIT_HQQ_HD __host__ __device__ __forceinline__
#else
#define LOWBIT_HQQ_HD inline
#endif

namespace lowbit::quantize::hqq {
namespace pow_detail {

LOWBIT_HQQ_HD double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}
LOWBIT_HQQ_HD double add(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}
LOWBIT_HQQ_HD double sub(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dsub_rn(a, b);
#else
    return a - b;
#endif
}
LOWBIT_HQQ_HD double div(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}
LOWBIT_HQQ_HD uint64_t bits(double x) {
#if defined(__CUDA_ARCH__)
    return uint64_t(__double_as_longlong(x));
#else
    uint64_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
#endif
}
LOWBIT_HQQ_HD double from_bits(uint64_t u) {
#if defined(__CUDA_ARCH__)
    return __longlong_as_double((long long)u);
#else
    double x;
    std::memcpy(&x, &u, sizeof x);
    return x;
#endif
}

} // namespace pow_detail

// float(a^e) for finite a > 0 and finite e with |e * ln a| < 700 (the shrink: a = |W - Wr| > 0, e = p - 1).
LOWBIT_HQQ_HD float lp_pow(float a_f, float e_f) {
    using namespace pow_detail;
    const double ln2_hi = 6.93147180369123816490e-01; // ln 2 = ln2_hi + ln2_lo; ln2_hi has 21 trailing zero bits,
    const double ln2_lo = 1.90821492927058770002e-10; // so k * ln2_hi is exact for the exponents met here
    // a = m 2^k, m in [sqrt(1/2), sqrt(2)) (f32 subnormals are normal doubles).
    const uint64_t u = bits(double(a_f));
    int k = int((u >> 52) & 0x7ff) - 1023;
    double m = from_bits((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
    if (m > 1.4142135623730951) {
        m = mul(m, 0.5);
        k += 1;
    }
    // ln m = 2 atanh(s) = 2 s sum_j s^2j / (2j + 1), s = (m - 1) / (m + 1), |s| < 0.1716: 14 terms reach 1e-20.
    const double s = div(sub(m, 1.0), add(m, 1.0)), s2 = mul(s, s);
    double t = div(1.0, 27.0);
    for (int j = 12; j >= 0; --j) t = add(div(1.0, double(2 * j + 1)), mul(s2, t));
    const double ln_a = add(add(mul(double(k), ln2_hi), mul(mul(2.0, s), t)), mul(double(k), ln2_lo));
    // a^e = exp(y) = 2^n exp(r), y = e ln a, n = nearest(y / ln 2), |r| <= ln2 / 2: Taylor to r^17 / 17!.
    const double y = mul(double(e_f), ln_a);
    const double q = mul(y, 1.4426950408889634);
    const double n = double(int64_t(q >= 0.0 ? add(q, 0.5) : sub(q, 0.5)));
    const double r = sub(sub(y, mul(n, ln2_hi)), mul(n, ln2_lo));
    double p = 1.0;
    for (int i = 17; i >= 1; --i) p = add(1.0, mul(div(r, double(i)), p));
    const double scaled = mul(p, from_bits(uint64_t(int64_t(n) + 1023) << 52)); // 2^n, |n| < 1010 here
    return float(scaled);
}

} // namespace lowbit::quantize::hqq
