// SPDX-License-Identifier: MIT
// The kernel table and the dispatching entry points of kernel.h.
#include "kernel/kernel_list.h"

#include "core/check.h"
#include "kernel/cpu/cpu_ops.h"
#include "kernel/ref/ref_ops.h"
#include "scheme/scheme_list.h"

#include <cblas.h>
#include <vector>

namespace lowbit::kernel {
namespace {

// Order matters only for readability; find_kernel prefers exact dtype rows over any-dtype rows.
const KernelRow kKernels[] = {
    // ref/: every op, always registered (the oracle and the fallback).
    {Op::kMatmul, Backend::kRef, kAnyDType, "ref::matmul", MatmulFn{ref::matmul}},
    // LLM.int8 (kI8 + row_scale): the decomposition of ref/matmul_int8_decomp.h, never dequantized to float.
    {Op::kMatmul, Backend::kRef, DType::kI8, "ref::matmul_int8_decomp", MatmulFn{cpu::matmul_llm_int8_ref}},
    {Op::kRmsNorm, Backend::kRef, kAnyDType, "ref::rms_norm", RmsNormFn{ref::rms_norm}},
    {Op::kRope, Backend::kRef, kAnyDType, "ref::rope", RopeFn{ref::rope}},
    {Op::kSoftmax, Backend::kRef, kAnyDType, "ref::softmax", SoftmaxFn{ref::softmax}},
    {Op::kSiluMul, Backend::kRef, kAnyDType, "ref::silu_mul", SiluMulFn{ref::silu_mul}},
    {Op::kAttention, Backend::kRef, kAnyDType, "ref::attention", AttentionFn{ref::attention}},
    {Op::kKvAttention, Backend::kRef, kAnyDType, "ref::kv_attention", KvAttentionFn{ref::kv_attention}},
    // cpu/: BLAS-backed matmul (f32 direct, other schemes via dequantized tiles) and f32 element ops.
    {Op::kMatmul, Backend::kCpu, DType::kF32, "cpu::matmul_f32", MatmulFn{cpu::matmul_f32}},
    // cpu/matmul_qdot.cpp: packed weights times 8-bit activations (F16/BF16: f32), scalar/AVX2 by CPUID.
    {Op::kMatmul, Backend::kCpu, DType::kF16, "cpu::qdot_f16", MatmulFn{cpu::matmul_qdot}, false},
    {Op::kMatmul, Backend::kCpu, DType::kBF16, "cpu::qdot_bf16", MatmulFn{cpu::matmul_qdot}, false},
    {Op::kMatmul, Backend::kCpu, DType::kQ4_0, "cpu::qdot_q4_0", MatmulFn{cpu::matmul_qdot}, true},
    {Op::kMatmul, Backend::kCpu, DType::kQ4_1, "cpu::qdot_q4_1", MatmulFn{cpu::matmul_qdot}, true},
    {Op::kMatmul, Backend::kCpu, DType::kQ5_0, "cpu::qdot_q5_0", MatmulFn{cpu::matmul_qdot}, true},
    {Op::kMatmul, Backend::kCpu, DType::kQ5_1, "cpu::qdot_q5_1", MatmulFn{cpu::matmul_qdot}, true},
    {Op::kMatmul, Backend::kCpu, DType::kQ8_0, "cpu::qdot_q8_0", MatmulFn{cpu::matmul_qdot}, true},
    {Op::kMatmul, Backend::kCpu, DType::kQ2_K, "cpu::qdot_q2_k", MatmulFn{cpu::matmul_qdot}, true},
    {Op::kMatmul, Backend::kCpu, DType::kQ3_K, "cpu::qdot_q3_k", MatmulFn{cpu::matmul_qdot}, true},
    {Op::kMatmul, Backend::kCpu, DType::kQ4_K, "cpu::qdot_q4_k", MatmulFn{cpu::matmul_qdot}, true},
    {Op::kMatmul, Backend::kCpu, DType::kQ5_K, "cpu::qdot_q5_k", MatmulFn{cpu::matmul_qdot}, true},
    {Op::kMatmul, Backend::kCpu, DType::kQ6_K, "cpu::qdot_q6_k", MatmulFn{cpu::matmul_qdot}, true},
    // Repacked HF 4-bit checkpoints (scheme/packed4): int4 groups and NF4/FP4 (codes as int16) x Q8 activations.
    {Op::kMatmul, Backend::kCpu, DType::kI4Z, "cpu::qdot_i4z", MatmulFn{cpu::matmul_qdot}, true},
    {Op::kMatmul, Backend::kCpu, DType::kI8Z, "cpu::qdot_i8z", MatmulFn{cpu::matmul_qdot}, true},
    {Op::kMatmul, Backend::kCpu, DType::kNF4x64, "cpu::qdot_nf4x64", MatmulFn{cpu::matmul_qdot}, true},
    {Op::kMatmul, Backend::kCpu, DType::kFP4x64, "cpu::qdot_fp4x64", MatmulFn{cpu::matmul_qdot}, true},
    {Op::kMatmul, Backend::kCpu, DType::kI8, "cpu::matmul_llm_int8", MatmulFn{cpu::matmul_llm_int8}},
    {Op::kMatmul, Backend::kCpu, kAnyDType, "cpu::matmul_dequant", MatmulFn{cpu::matmul_dequant}},
    {Op::kRmsNorm, Backend::kCpu, kAnyDType, "cpu::rms_norm", RmsNormFn{cpu::rms_norm}},
    {Op::kRope, Backend::kCpu, kAnyDType, "cpu::rope", RopeFn{cpu::rope}},
    {Op::kSiluMul, Backend::kCpu, kAnyDType, "cpu::silu_mul", SiluMulFn{cpu::silu_mul}},
    {Op::kAttention, Backend::kCpu, kAnyDType, "cpu::attention", AttentionFn{cpu::attention}},
    {Op::kKvAttention, Backend::kCpu, kAnyDType, "cpu::kv_attention", KvAttentionFn{cpu::kv_attention}},
};

bool accepts(const KernelRow& row, DType dtype) {
    if (row.dtype != kAnyDType) return row.dtype == dtype;
    if (row.op != Op::kMatmul) return true;
    const auto* sch = scheme::find_scheme(dtype);
    return sch != nullptr && sch->dequantize_row != nullptr;
}

const KernelRow* search(Op op, DType dtype, Backend backend) {
    const KernelRow* any = nullptr;
    for (const auto& row : kKernels) {
        if (row.op != op || row.backend != backend || !accepts(row, dtype)) continue;
        if (row.dtype == dtype) return &row;
        if (!any) any = &row;
    }
    return any;
}

template <class Fn> Fn pick(Op op, DType dtype, Backend backend) {
    const KernelRow* row = find_kernel(op, dtype, backend);
    LOWBIT_CHECK(row != nullptr); // callers check can_matmul() at bind time
    return std::get<Fn>(row->fn);
}

} // namespace

const char* backend_name(Backend b) {
    return b == Backend::kRef ? "ref" : "cpu";
}
const char* rope_style_name(RopeStyle s) {
    return s == RopeStyle::kNeox ? "neox" : "norm";
}

const char* op_name(Op op) {
    switch (op) {
    case Op::kMatmul:
        return "matmul";
    case Op::kRmsNorm:
        return "rms_norm";
    case Op::kRope:
        return "rope";
    case Op::kSoftmax:
        return "softmax";
    case Op::kSiluMul:
        return "silu_mul";
    case Op::kAttention:
        return "attention";
    case Op::kKvAttention:
        return "kv_attention";
    }
    return "?";
}

std::span<const KernelRow> kernel_list() {
    return kKernels;
}

const KernelRow* find_kernel(Op op, DType dtype, Backend backend) {
    if (const KernelRow* row = search(op, dtype, backend)) return row;
    return backend == Backend::kRef ? nullptr : search(op, dtype, Backend::kRef);
}

WeightView make_weight(const void* data, DType dtype, int64_t n_rows, int64_t n_cols) {
    const auto row_bytes = dtype_row_bytes(dtype, static_cast<uint64_t>(n_cols));
    LOWBIT_CHECK(row_bytes.has_value());
    return WeightView{data, dtype, n_rows, n_cols, *row_bytes};
}

bool can_matmul(DType dtype) {
    return find_kernel(Op::kMatmul, dtype, Backend::kRef) != nullptr;
}

void matmul(const Exec& ex, const float* x, int64_t m, const WeightView& w, const float* bias, float* y) {
    const MatmulFn fn = pick<MatmulFn>(Op::kMatmul, w.dtype, ex.backend);
    if (!w.col_perm) return fn(x, m, w, bias, y, ex.pool);
    // Stored column j is input column col_perm[j]: gather x into the stored order, then the plain matmul.
    thread_local std::vector<float> xp;
    xp.resize(size_t(m * w.n_cols));
    for (int64_t t = 0; t < m; ++t) {
        const float* src = x + t * w.n_cols;
        float* dst = xp.data() + t * w.n_cols;
        for (int64_t j = 0; j < w.n_cols; ++j) dst[j] = src[w.col_perm[j]];
    }
    WeightView plain = w;
    plain.col_perm = nullptr;
    fn(xp.data(), m, plain, bias, y, ex.pool);
}

void rms_norm(const Exec& ex, const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps) {
    pick<RmsNormFn>(Op::kRmsNorm, DType::kF32, ex.backend)(x, weight, y, n_rows, n, eps);
}

void rope(const Exec& ex, float* x, int64_t n_tokens, int64_t row_stride, int64_t n_heads, int64_t head_dim,
          int64_t pos0, const float* inv_freq, RopeStyle style) {
    pick<RopeFn>(Op::kRope, DType::kF32, ex.backend)(x, n_tokens, row_stride, n_heads, head_dim, pos0, inv_freq, style);
}

void softmax(const Exec& ex, float* x, int64_t n) {
    pick<SoftmaxFn>(Op::kSoftmax, DType::kF32, ex.backend)(x, n);
}

void silu_mul(const Exec& ex, const float* gate, const float* up, float* out, int64_t n) {
    pick<SiluMulFn>(Op::kSiluMul, DType::kF32, ex.backend)(gate, up, out, n);
}

void attention(const Exec& ex, const AttentionArgs& args) {
    pick<AttentionFn>(Op::kAttention, DType::kF32, ex.backend)(args, ex.pool);
}

void kv_attention(const Exec& ex, const KvAttentionArgs& args) {
    pick<KvAttentionFn>(Op::kKvAttention, args.kv_dtype, ex.backend)(args, ex.pool);
}

bool can_cache(DType dtype) {
    return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kQ8_0;
}

uint64_t KvAttentionArgs::row_bytes() const {
    const auto b = dtype_row_bytes(kv_dtype, uint64_t(n_kv_heads * head_dim));
    LOWBIT_CHECK(b.has_value());
    return *b;
}

void dequantize_row(const WeightView& w, int64_t r, float* dst) {
    const auto* sch = scheme::find_scheme(w.dtype);
    LOWBIT_CHECK(sch != nullptr && sch->dequantize_row != nullptr);
    sch->dequantize_row(w.row(r), dst, w.n_cols);
}

void set_blas_threads(int n_threads) {
    if (n_threads > 0) openblas_set_num_threads(n_threads);
}

} // namespace lowbit::kernel
