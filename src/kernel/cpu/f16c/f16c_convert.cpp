// SPDX-License-Identifier: MIT
// f16 -> f32 rows with the F16C instruction (8 values per vcvtph2ps). This file alone is compiled with -mf16c
// -mavx (kernel/CMakeLists.txt); callers must check has_f16c() first (DESIGN.md §3.5: ISA flags per file,
// chosen at run time).
#include "core/half.h"
#include "kernel/cpu/cpu_ops.h"

#include <cpuid.h>
#include <immintrin.h>

namespace lowbit::kernel::cpu {

// CPUID leaf 1 directly: clang before 16 has no "f16c" in __builtin_cpu_supports (the fuzz preset is clang-14).
bool has_f16c() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
    return (ecx & bit_F16C) != 0 && __builtin_cpu_supports("avx");
}

void dequantize_row_f16_f16c(const void* src, float* dst, int64_t n) {
    const auto* s = static_cast<const uint16_t*>(src);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; ++i) dst[i] = f16_to_f32(load_u16(s, i)); // any alignment
}

} // namespace lowbit::kernel::cpu
