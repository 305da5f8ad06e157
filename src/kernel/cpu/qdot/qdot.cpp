// SPDX-License-Identifier: MIT
// qdot: activation quantization, the run-time level choice (CPUID + LOWBIT_CPU) and the per-level lookup.
#include "kernel/cpu/qdot/qdot.h"

#include "kernel/cpu/cpu_ops.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace lowbit::kernel::cpu::qdot {

DotFn find_dot_legacy_scalar(DType dtype);
DotFn find_dot_kquant_scalar(DType dtype);
DotFn find_dot_half_scalar(DType dtype);
DotFn find_dot_packed4_scalar(DType dtype);
#if defined(__x86_64__) || defined(__i386__)
DotFn find_dot_legacy_avx2(DType dtype);
DotFn find_dot_kquant_avx2(DType dtype);
DotFn find_dot_kquant_avxvnni(DType dtype);
DotFn find_dot_half_avx2(DType dtype);
DotFn find_dot_packed4_avx2(DType dtype);
DotRowsFn find_dot_rows_legacy_avx2(DType dtype);
DotRowsFn find_dot_rows_half_avx2(DType dtype);
DotRowsFn find_dot_rows_packed4_avx2(DType dtype);
void quantize_row_q8k_avx2(const float* x, BlockQ8K* y, int64_t k);
#endif

namespace {

// Round to nearest, ties to even, via the 1.5 * 2^23 bias (|v| <= 127 here); vectorizes with SSE2.
int round_even(float v) {
    const float b = v + 12582912.f;
    int i;
    std::memcpy(&i, &b, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

// n values of x to int8 with scale amax / 127; returns d.
float quantize_group(const float* x, int8_t* q, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < n; ++j) q[j] = static_cast<int8_t>(round_even(x[j] * id));
    return d;
}

bool cpu_has(Level level) {
#if defined(__x86_64__) || defined(__i386__)
    switch (level) {
    case Level::kScalar:
        return true;
    case Level::kAvx2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case Level::kAvx512:
        return cpu_has(Level::kAvx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl");
    }
    return false;
#else
    return level == Level::kScalar;
#endif
}

Level best_supported(Level want) {
    int l = static_cast<int>(want);
    while (l > 0 && !cpu_has(static_cast<Level>(l))) --l;
    return static_cast<Level>(l);
}

} // namespace

Level resolve_level(const char* env) {
    const Level best = best_supported(Level::kAvx512);
    if (!env || !*env) return best;
    for (int l = 0; l < kLevelCount; ++l) {
        if (std::strcmp(env, level_name(static_cast<Level>(l))) != 0) continue;
        const Level got = best_supported(static_cast<Level>(l));
        if (got != static_cast<Level>(l))
            std::fprintf(stderr, "lowbit: warning: LOWBIT_CPU=%s but this CPU lacks it; using %s\n", env,
                         level_name(got));
        return got;
    }
    std::fprintf(stderr, "lowbit: warning: LOWBIT_CPU=%s is not one of scalar, avx2, avx512; using %s\n", env,
                 level_name(best));
    return best;
}

const char* level_name(Level level) {
    switch (level) {
    case Level::kScalar:
        return "scalar";
    case Level::kAvx2:
        return "avx2";
    case Level::kAvx512:
        return "avx512";
    }
    return "?";
}

bool act_kind(DType dtype, ActKind* kind) {
    switch (dtype) {
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ8_0:
    case DType::kI4Z:
    case DType::kI8Z:
    case DType::kNF4x64:
    case DType::kFP4x64:
        *kind = ActKind::kQ8;
        return true;
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
        *kind = ActKind::kQ8K;
        return true;
    case DType::kF16:
    case DType::kBF16:
        *kind = ActKind::kF32;
        return true;
    default:
        return false;
    }
}

int64_t act_row_bytes(ActKind kind, int64_t k) {
    switch (kind) {
    case ActKind::kQ8:
        return k / 32 * int64_t(sizeof(BlockQ8));
    case ActKind::kQ8K:
        return k / 256 * int64_t(sizeof(BlockQ8K));
    case ActKind::kF32:
        return k * int64_t(sizeof(float));
    }
    return 0;
}

void quantize_row_q8(const float* x, BlockQ8* y, int64_t k) {
    for (int64_t i = 0; i < k / 32; ++i) {
        y[i].d = quantize_group(x + 32 * i, y[i].qs, 32);
        int sum = 0;
        for (int j = 0; j < 32; ++j) sum += y[i].qs[j];
        y[i].s = y[i].d * float(sum);
    }
}

void quantize_row_q8k(const float* x, BlockQ8K* y, int64_t k) {
    for (int64_t i = 0; i < k / 256; ++i) {
        y[i].d = quantize_group(x + 256 * i, y[i].qs, 256);
        for (int g = 0; g < 16; ++g) {
            int sum = 0;
            for (int j = 0; j < 16; ++j) sum += y[i].qs[16 * g + j];
            y[i].bsums[g] = static_cast<int16_t>(sum);
        }
    }
}

QuantizeQ8KFn find_quantize_q8k([[maybe_unused]] Level level) {
#if defined(__x86_64__) || defined(__i386__)
    if (level != Level::kScalar) return quantize_row_q8k_avx2;
#endif
    return quantize_row_q8k;
}

bool has_avx_vnni() {
#if defined(__x86_64__) || defined(__i386__)
    // CPUID leaf 7 sub-leaf 1, EAX bit 4 (AVX-VNNI, VEX-encoded); once: each CPUID traps to the hypervisor in a VM.
    static const bool has = [] {
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        return cpu_has(Level::kAvx2) && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 4)) != 0;
    }();
    return has;
#else
    return false;
#endif
}

DotFn find_dot_kquant_avx2_at([[maybe_unused]] DType dtype, [[maybe_unused]] bool vnni) {
#if defined(__x86_64__) || defined(__i386__)
    return vnni ? find_dot_kquant_avxvnni(dtype) : find_dot_kquant_avx2(dtype);
#else
    return nullptr;
#endif
}

DotFn find_dot_scalar(DType dtype) {
    if (DotFn f = find_dot_legacy_scalar(dtype)) return f;
    if (DotFn f = find_dot_kquant_scalar(dtype)) return f;
    if (DotFn f = find_dot_packed4_scalar(dtype)) return f;
    return find_dot_half_scalar(dtype);
}

DotFn find_dot_avx2([[maybe_unused]] DType dtype) {
#if defined(__x86_64__) || defined(__i386__)
    if (DotFn f = find_dot_legacy_avx2(dtype)) return f;
    if (DotFn f = find_dot_kquant_avx2_at(dtype, has_avx_vnni())) return f;
    if (DotFn f = find_dot_packed4_avx2(dtype)) return f;
    return find_dot_half_avx2(dtype);
#else
    return nullptr;
#endif
}

// No AVX-512 kernels yet: an AVX-512 CPU runs the AVX2 ones (best_dot falls back).
DotFn find_dot_avx512(DType) {
    return nullptr;
}

DotFn find_dot(DType dtype, Level level) {
    switch (level) {
    case Level::kScalar:
        return find_dot_scalar(dtype);
    case Level::kAvx2:
        return find_dot_avx2(dtype);
    case Level::kAvx512:
        return find_dot_avx512(dtype);
    }
    return nullptr;
}

bool supported(Level level) {
    static const bool has[kLevelCount] = {cpu_has(Level::kScalar), cpu_has(Level::kAvx2), cpu_has(Level::kAvx512)};
    return has[static_cast<int>(level)];
}

Level active_level() {
    static const Level level = resolve_level(std::getenv("LOWBIT_CPU"));
    return level;
}

DotRowsFn find_dot_rows([[maybe_unused]] DType dtype, Level level) {
#if defined(__x86_64__) || defined(__i386__)
    if (level == Level::kAvx2) {
        if (DotRowsFn f = find_dot_rows_legacy_avx2(dtype)) return f;
        if (DotRowsFn f = find_dot_rows_packed4_avx2(dtype)) return f;
        return find_dot_rows_half_avx2(dtype);
    }
#endif
    (void)level;
    return nullptr;
}

Level best_dot_level(DType dtype, Level level) {
    for (int l = static_cast<int>(level); l > 0; --l)
        if (find_dot(dtype, static_cast<Level>(l))) return static_cast<Level>(l);
    return Level::kScalar;
}

DotFn best_dot(DType dtype, Level level) {
    return find_dot(dtype, best_dot_level(dtype, level));
}

} // namespace lowbit::kernel::cpu::qdot
