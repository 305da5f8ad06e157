// SPDX-License-Identifier: MIT
// qdot: dot products of packed GGUF weight rows with activations quantized on the fly to 8 bits (llama.cpp's
// scheme: Q8 blocks of 32 for the legacy types, Q8K super-blocks of 256 with per-16 sums for the k-quants), and
// of F16/BF16 rows with f32 activations. Integer sums are exact; results differ from ref/ (f32 dequantize + f32
// dot) only by the 8-bit rounding of x.
// Three levels chosen at run time (dispatch.cpp): scalar (portable, always built), AVX2+FMA+F16C, AVX-512.
// ISA files (avx2/, avx512/) are compiled with their own flags (kernel/CMakeLists.txt) and use no std:: templates
// (an inline template instantiated there with AVX2 could be the copy the linker keeps for the whole program).
#pragma once

#include "core/dtype.h"

#include <cstdint>

namespace lowbit::kernel::cpu::qdot {

enum class Level : uint8_t { kScalar, kAvx2, kAvx512 };
inline constexpr int kLevelCount = 3;
const char* level_name(Level level);

// Activation block for the legacy types (Q4_0 … Q8_0): x[j] ≈ d * qs[j]; s = d * Σ qs (the min term of Q4_1/Q5_1).
struct BlockQ8 {
    float d;
    float s;
    int8_t qs[32];
};
static_assert(sizeof(BlockQ8) == 40, "BlockQ8 is 40 bytes");

// Activation super-block for the k-quants (ggml's block_q8_K): x[j] ≈ d * qs[j]; bsums[g] = Σ qs[16g .. 16g+16).
struct BlockQ8K {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
};
static_assert(sizeof(BlockQ8K) == 292, "BlockQ8K is 292 bytes");

// What a weight dtype's dot expects its activations as.
enum class ActKind : uint8_t { kQ8, kQ8K, kF32 };

// One weight row against n_x (1..kMaxX) activation rows of K elements:
//   out[j * out_stride] = Σ_k w[k] * x_j[k],  x_j = the activation row at (const uint8_t*)act + j * act_stride.
// w_row: K elements in the weight dtype's blocks; act: K / 32 BlockQ8, K / 256 BlockQ8K or K floats.
// Each row's result is the same bits whatever n_x is (per row the same operations in the same order), so a
// batch of decode tokens gets exactly what one token alone gets. kMaxX = 16: a decode step of 16 sequences
// decodes every weight block once (the AVX2 legacy and k-quant dots hold 4 rows' sums in registers per pass over
// a decoded block; F16/BF16/packed-4 dots take them 4 at a time; AVX2 Q4_K/Q6_K from 2 rows on keep 4 rows' sums
// and accumulators in registers along the whole weight row, decoding its chunks once per 4 rows).
using DotFn = void (*)(int64_t k, const void* w_row, const void* act, int64_t act_stride, int n_x, float* out,
                       int64_t out_stride);
inline constexpr int kMaxX = 16;

// kRows weight rows at once (w_rows, w_rows + w_stride, …) against n_x (1..kMaxX) activation rows:
//   out[j * out_stride + r] = Σ_k w_r[k] * x_j[k],  r = 0..kRows-1,
// the same bits as the level's DotFn gives each (row, activation row) pair. Types with one (AVX2: Q4_0, Q8_0,
// kI4Z, kNF4x64, kFP4x64, F16, BF16) hold independent accumulators for the 8 rows and share each activation block
// among them.
using DotRowsFn = void (*)(int64_t k, const void* w_rows, int64_t w_stride, const void* act, int64_t act_stride,
                           int n_x, float* out, int64_t out_stride);
inline constexpr int kRows = 8;

// Activation layout of `dtype`, or false when qdot has no kernel for it.
bool act_kind(DType dtype, ActKind* kind);
// Bytes of one activation row of k elements (k a multiple of the block: 32, 256 or 1).
int64_t act_row_bytes(ActKind kind, int64_t k);
// Quantizes one row of k floats (k % 32 == 0 for kQ8, % 256 for kQ8K): amax scaling, round to nearest even.
void quantize_row_q8(const float* x, BlockQ8* y, int64_t k);
void quantize_row_q8k(const float* x, BlockQ8K* y, int64_t k);
// quantize_row_q8k at `level` (the same bytes at every level; AVX2 and up vectorized), for matmul's activations.
using QuantizeQ8KFn = void (*)(const float* x, BlockQ8K* y, int64_t k);
QuantizeQ8KFn find_quantize_q8k(Level level);

// The dot of `dtype` at exactly `level`, or nullptr when that level has none (or is not built for this CPU
// architecture). Does not check that the CPU can run it: see supported().
DotFn find_dot(DType dtype, Level level);
// Whether this CPU can run `level`'s code (CPUID).
bool supported(Level level);
// The level for a LOWBIT_CPU value: null or empty -> the best supported level; "scalar" | "avx2" | "avx512" ->
// that level clamped to the supported ones (one warning line on stderr when clamped or unknown).
Level resolve_level(const char* request);
// resolve_level(getenv("LOWBIT_CPU")), computed once: the level matmul uses.
Level active_level();
// find_dot at `level`, falling back to lower levels for dtypes the level lacks.
DotFn best_dot(DType dtype, Level level);

// NF4/FP4 (kNF4x64 / kFP4x64) dots multiply 8-bit activations by the 16 codes as int16: rint(code · kCode16Scale);
// a block's float factor is absmax · kInvCode16Scale · d_x (scalar/dot_packed4_scalar.cpp explains the rounding).
inline constexpr int kCode16Scale = 32767;
inline constexpr float kInvCode16Scale = 1.0f / 32767.0f;
const int16_t* packed4_code16_table(DType dtype); // [16], kNF4x64 or kFP4x64

// The rows dot of `dtype` at exactly `level` (matching find_dot(dtype, level)), or nullptr.
DotRowsFn find_dot_rows(DType dtype, Level level);
// The level best_dot(dtype, level) takes its dot from (kScalar when none has one).
Level best_dot_level(DType dtype, Level level);

// Whether this CPU has AVX-VNNI (then the AVX2 level's k-quant dots are the build with it: the same bits).
bool has_avx_vnni();
// The AVX2 level's k-quant dots without (vnni false) or with AVX-VNNI, whatever this CPU has (tests run both where
// they can); nullptr off x86 or for other dtypes.
DotFn find_dot_kquant_avx2_at(DType dtype, bool vnni);

// Per-level tables (each level's files).
DotFn find_dot_scalar(DType dtype);
DotFn find_dot_avx2(DType dtype);
DotFn find_dot_avx512(DType dtype);

} // namespace lowbit::kernel::cpu::qdot
