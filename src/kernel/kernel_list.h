// SPDX-License-Identifier: MIT
// The kernel table: one row per (op, dtype, backend) implementation. Adding a fast kernel is one function in
// its back end's folder plus one row here (kernel_list.cpp); the dispatcher picks it and the registry-driven
// parity test (kernel_parity_test.cpp) compares it with ref/ automatically.
#pragma once

#include "kernel/kernel.h"

#include <span>
#include <variant>

namespace lowbit::kernel {

enum class Op : uint8_t { kMatmul, kRmsNorm, kRope, kSoftmax, kSiluMul, kAttention, kKvAttention };
const char* op_name(Op op);

// DType::kCount in a row means "any dtype": for matmul, any dtype with a scheme row; for the other ops the
// dtype is f32 activations and is ignored.
inline constexpr DType kAnyDType = DType::kCount;

using KernelFn = std::variant<MatmulFn, RmsNormFn, RopeFn, SoftmaxFn, SiluMulFn, AttentionFn, KvAttentionFn>;

struct KernelRow {
    Op op;
    Backend backend;
    DType dtype; // exact weight dtype, or kAnyDType
    const char* name;
    KernelFn fn;
    // Matmul rows that round x to 8-bit blocks before integer dot products (llama.cpp's numerics): their
    // results match ref/ to the activation rounding (~1e-2 relative), not to f32 summation order.
    bool quantizes_activations = false;
};

std::span<const KernelRow> kernel_list();

// The row to run (op, dtype) on `backend`: an exact-dtype row of that back end, else its any-dtype row, else
// the same search in ref/. nullptr only when no row accepts the dtype (matmul of a dtype without a scheme row).
const KernelRow* find_kernel(Op op, DType dtype, Backend backend);

} // namespace lowbit::kernel
