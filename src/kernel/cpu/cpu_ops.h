// SPDX-License-Identifier: MIT
// cpu/: the fast CPU path. matmul: f32 weights go straight to OpenBLAS; other dtypes are dequantized
// (scheme table) into f32 tiles feeding cblas_sgemm for prompt batches, or into per-thread rows feeding a
// threaded dot product for a few tokens (generation). attention is threaded over (token, head).
#pragma once

#include "kernel/cpu/qdot/qdot.h"
#include "kernel/kernel.h"

namespace lowbit::kernel::cpu {

// Below this many activation rows, matmul uses the threaded GEMV path instead of dequantize + GEMM.
inline constexpr int64_t kGemmMinRows = 8;

void matmul_f32(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool);
// f16 weights: the generic path with F16C conversion when the CPU has it, else dequantize_row_f16_fast
// (both bit-exact with the scheme row).
void dequantize_row_f16_fast(const void* src, float* dst, int64_t n);
// cpu/f16c/: the same with the F16C instruction; only call when has_f16c().
bool has_f16c();
void dequantize_row_f16_f16c(const void* src, float* dst, int64_t n);
void matmul_f16(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool);
void matmul_dequant(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool);
// GGUF block types, F16 and BF16 on packed weights (cpu/matmul_qdot.cpp): x quantized to 8-bit blocks (F16/BF16:
// kept f32) and integer dot products at qdot::active_level(), 8 weight rows per call where the dtype has a rows
// dot; prompt batches (> 32 rows) take dequantize + BLAS except Q6_K/Q2_K (and Q4_0/Q8_0/Q4_K with
// LOWBIT_INT_PREFILL=1). Results match ref/ up to the 8-bit rounding of x (llama.cpp's numerics).
void matmul_qdot(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool);
// The integer path alone at `level` (falling back to lower levels per dtype); false when qdot lacks w.dtype.
bool matmul_qdot_at(qdot::Level level, const float* x, int64_t m, const WeightView& w, const float* bias, float* y,
                    ThreadPool* pool);
// LLM.int8 (w.dtype kI8 with w.row_scale): ref::matmul_int8_decomp's arithmetic in the same order, activations
// quantized once, output rows threaded: bit-identical to it. matmul_llm_int8_ref calls ref/ itself (its row).
void matmul_llm_int8(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool);
void matmul_llm_int8_ref(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool);
void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps);
// cos/sin computed once per token (in double, like ref/) and applied to every head.
void rope(float* x, int64_t n_tokens, int64_t row_stride, int64_t n_heads, int64_t head_dim, int64_t pos0,
          const float* inv_freq, RopeStyle style);
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
void attention(const AttentionArgs& args, ThreadPool* pool);
// Threaded over (token, kv head): each cache row is converted to f32 once for the whole query group; the
// arithmetic per head is cpu::attention's, so an f32 cache gives bit-identical results.
void kv_attention(const KvAttentionArgs& args, ThreadPool* pool);

// Dot product of two f32 vectors with independent partial sums (vectorizes without -ffast-math).
float dot_f32(const float* a, const float* b, int64_t n);

} // namespace lowbit::kernel::cpu
