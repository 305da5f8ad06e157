// SPDX-License-Identifier: MIT
// ref/: the plain scalar implementation of every op in kernel.h — the oracle the fast paths are tested against.
// Straightforward loops, double accumulators, no threads; speed is a non-goal.
#pragma once

#include "kernel/kernel.h"

namespace lowbit::kernel::ref {

void matmul(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool* pool);
void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps);
void rope(float* x, int64_t n_tokens, int64_t row_stride, int64_t n_heads, int64_t head_dim, int64_t pos0,
          const float* inv_freq, RopeStyle style);
void softmax(float* x, int64_t n);
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
void attention(const AttentionArgs& args, ThreadPool* pool);
void kv_attention(const KvAttentionArgs& args, ThreadPool* pool);

} // namespace lowbit::kernel::ref
