// SPDX-License-Identifier: MIT
// ref::kv_attention: attention of a multi-sequence batch over a slotted KV cache (kernel.h), the oracle of the
// fast paths. Cache rows of any cacheable dtype are dequantized through the scheme table; the arithmetic is
// ref::attention's (double accumulators, ref::softmax), so an f32 cache gives its results bit for bit.
#include "core/check.h"
#include "kernel/ref/ref_ops.h"
#include "scheme/scheme_list.h"

#include <vector>

namespace lowbit::kernel::ref {

void kv_attention(const KvAttentionArgs& a, ThreadPool*) {
    const int64_t kv_dim = a.n_kv_heads * a.head_dim;
    const int64_t q_stride = a.n_heads * a.head_dim;
    const auto* sch = scheme::find_scheme(a.kv_dtype);
    LOWBIT_CHECK(sch != nullptr && sch->dequantize_row != nullptr);
    std::vector<float> k_rows, v_rows;
    for (int64_t t = 0; t < a.n_tokens; ++t) {
        const int64_t s = a.seq[t], n_seen = int64_t(a.pos[t]) + 1; // causal: rows [0, pos]
        k_rows.resize(size_t(n_seen * kv_dim)), v_rows.resize(size_t(n_seen * kv_dim));
        for (int64_t j = 0; j < n_seen; ++j) {
            sch->dequantize_row(a.k_row(s, j), k_rows.data() + j * kv_dim, kv_dim);
            sch->dequantize_row(a.v_row(s, j), v_rows.data() + j * kv_dim, kv_dim);
        }
        AttentionArgs one;
        one.q = a.q + t * q_stride, one.out = a.out + t * q_stride;
        one.k = k_rows.data(), one.v = v_rows.data();
        one.n_tokens = 1, one.n_past = n_seen - 1;
        one.n_heads = a.n_heads, one.n_kv_heads = a.n_kv_heads, one.head_dim = a.head_dim, one.scale = a.scale;
        attention(one, nullptr);
    }
}

} // namespace lowbit::kernel::ref
