// SPDX-License-Identifier: MIT
// cpu::kv_attention (kernel.h, cpu_ops.h): one work item per (token, kv head). Each visible cache row's head slice
// is converted to f32 once (F16C for f16 when present, the scheme row for q8_0, none for f32) and serves the
// whole query group; per head the arithmetic is cpu::attention's (dot_f32 scores, two-pass softmax in f32,
// p·v accumulated in row order), so an f32 cache is bit-identical with it.
// Memory per thread: scores [group, pos + 1] and one converted head slice; nothing grows with the batch.
#include "core/check.h"
#include "kernel/cpu/cpu_ops.h"
#include "scheme/scheme_list.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace lowbit::kernel::cpu {
namespace {

using RowFn = void (*)(const void* src, float* dst, int64_t n);

// The converter of head slices for a cache dtype (nullptr for f32: rows are read in place).
RowFn slice_converter(DType dtype) {
    if (dtype == DType::kF32) return nullptr;
    // CPUID once: in a VM each CPUID is a trap to the hypervisor (3 % of a decode step when asked per call).
    static const bool f16c = has_f16c();
    if (dtype == DType::kF16) return f16c ? dequantize_row_f16_f16c : dequantize_row_f16_fast;
    const auto* sch = scheme::find_scheme(dtype);
    LOWBIT_CHECK(sch != nullptr && sch->dequantize_row != nullptr);
    return sch->dequantize_row;
}

} // namespace

void kv_attention(const KvAttentionArgs& a, ThreadPool* pool) {
    const int64_t group = a.n_heads / a.n_kv_heads, q_stride = a.n_heads * a.head_dim, hd = a.head_dim;
    const uint64_t slice_bytes = *dtype_row_bytes(a.kv_dtype, uint64_t(hd)); // one head of one row
    const RowFn convert = slice_converter(a.kv_dtype);
    const uint64_t row_bytes = a.row_bytes(), slot_bytes = row_bytes * uint64_t(a.n_ctx); // once, not per row
    const int64_t n_items = a.n_tokens * a.n_kv_heads;
    auto work = [&](int64_t begin, int64_t end, int) {
        thread_local std::vector<float> scores, slice, mx, inv; // [group * n_seen], [hd], [group], [group]
        slice.resize(size_t(hd)), inv.resize(size_t(group));
        for (int64_t item = begin; item < end; ++item) {
            const int64_t t = item / a.n_kv_heads, kvh = item % a.n_kv_heads;
            const int64_t s = a.seq[t], n_seen = int64_t(a.pos[t]) + 1;
            const uint8_t* k_slot = static_cast<const uint8_t*>(a.k) + uint64_t(s) * slot_bytes;
            const uint8_t* v_slot = static_cast<const uint8_t*>(a.v) + uint64_t(s) * slot_bytes;
            scores.resize(size_t(group * n_seen));
            auto head_of = [&](const uint8_t* row) -> const float* {
                const uint8_t* p = row + uint64_t(kvh) * slice_bytes;
                if (!convert) return reinterpret_cast<const float*>(p);
                convert(p, slice.data(), hd);
                return slice.data();
            };
            const float* q0 = a.q + t * q_stride + kvh * group * hd;
            mx.assign(size_t(group), -INFINITY);
            for (int64_t j = 0; j < n_seen; ++j) {
                const float* k = head_of(k_slot + uint64_t(j) * row_bytes);
                for (int64_t g = 0; g < group; ++g) {
                    const float sc = dot_f32(q0 + g * hd, k, hd) * a.scale;
                    scores[size_t(g * n_seen + j)] = sc;
                    mx[size_t(g)] = std::max(mx[size_t(g)], sc);
                }
            }
            float* o0 = a.out + t * q_stride + kvh * group * hd;
            for (int64_t g = 0; g < group; ++g) {
                float* sg = scores.data() + g * n_seen;
                float sum = 0.0f;
                for (int64_t j = 0; j < n_seen; ++j) sum += (sg[j] = std::exp(sg[j] - mx[size_t(g)]));
                inv[size_t(g)] = 1.0f / sum;
                std::fill(o0 + g * hd, o0 + (g + 1) * hd, 0.0f);
            }
            for (int64_t j = 0; j < n_seen; ++j) {
                const float* v = head_of(v_slot + uint64_t(j) * row_bytes);
                for (int64_t g = 0; g < group; ++g) {
                    const float p = scores[size_t(g * n_seen + j)] * inv[size_t(g)];
                    float* o = o0 + g * hd;
                    for (int64_t d = 0; d < hd; ++d) o[d] += p * v[d];
                }
            }
        }
    };
    if (pool) {
        pool->parallel_for(n_items, work, 1);
    } else {
        work(0, n_items, 0);
    }
}

} // namespace lowbit::kernel::cpu
