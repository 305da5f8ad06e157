// SPDX-License-Identifier: MIT
// CPU element-wise ops and attention in f32 (the ref/ versions accumulate in double).
#include "kernel/cpu/cpu_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace lowbit::kernel::cpu {

void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps) {
    for (int64_t r = 0; r < n_rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        const float inv = 1.0f / std::sqrt(dot_f32(xr, xr, n) / float(n) + eps);
        for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv * weight[i];
    }
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

void rope(float* x, int64_t n_tokens, int64_t row_stride, int64_t n_heads, int64_t head_dim, int64_t pos0,
          const float* inv_freq, RopeStyle style) {
    const int64_t half = head_dim / 2;
    thread_local std::vector<float> cs; // [half] cos, [half] sin: once per token, shared by all heads
    cs.resize(static_cast<size_t>(2 * half));
    for (int64_t t = 0; t < n_tokens; ++t) {
        const double pos = double(pos0 + t);
        for (int64_t i = 0; i < half; ++i) {
            const double angle = pos * double(inv_freq[i]);
            cs[size_t(i)] = static_cast<float>(std::cos(angle));
            cs[size_t(half + i)] = static_cast<float>(std::sin(angle));
        }
        const int64_t step = style == RopeStyle::kNeox ? 1 : 2, other = style == RopeStyle::kNeox ? half : 1;
        for (int64_t h = 0; h < n_heads; ++h) {
            float* v = x + t * row_stride + h * head_dim;
            for (int64_t i = 0; i < half; ++i) {
                float* a = v + i * step;
                const float x0 = a[0], x1 = a[other], c = cs[size_t(i)], sn = cs[size_t(half + i)];
                a[0] = x0 * c - x1 * sn;
                a[other] = x0 * sn + x1 * c;
            }
        }
    }
}

void attention(const AttentionArgs& a, ThreadPool* pool) {
    const int64_t group = a.n_heads / a.n_kv_heads;
    const int64_t q_stride = a.n_heads * a.head_dim, kv_stride = a.n_kv_heads * a.head_dim;
    const int64_t n_items = a.n_tokens * a.n_heads;
    auto work = [&](int64_t begin, int64_t end, int) {
        thread_local std::vector<float> scores;
        scores.resize(static_cast<size_t>(a.n_past + a.n_tokens));
        for (int64_t item = begin; item < end; ++item) {
            const int64_t t = item / a.n_heads, h = item % a.n_heads, kvh = h / group;
            const int64_t n_seen = a.n_past + t + 1;
            const float* q = a.q + t * q_stride + h * a.head_dim;
            float mx = -INFINITY;
            for (int64_t j = 0; j < n_seen; ++j) {
                const float s = dot_f32(q, a.k + j * kv_stride + kvh * a.head_dim, a.head_dim) * a.scale;
                scores[size_t(j)] = s;
                mx = std::max(mx, s);
            }
            float sum = 0.0f;
            for (int64_t j = 0; j < n_seen; ++j) sum += (scores[size_t(j)] = std::exp(scores[size_t(j)] - mx));
            const float inv = 1.0f / sum;
            float* o = a.out + t * q_stride + h * a.head_dim;
            std::fill(o, o + a.head_dim, 0.0f);
            for (int64_t j = 0; j < n_seen; ++j) {
                const float p = scores[size_t(j)] * inv;
                const float* v = a.v + j * kv_stride + kvh * a.head_dim;
                for (int64_t d = 0; d < a.head_dim; ++d) o[d] += p * v[d];
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
