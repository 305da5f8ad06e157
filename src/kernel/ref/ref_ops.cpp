// SPDX-License-Identifier: MIT
// Scalar reference ops (see ref_ops.h).
#include "kernel/ref/ref_ops.h"

#include "core/check.h"
#include "scheme/scheme_list.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace lowbit::kernel::ref {

void matmul(const float* x, int64_t m, const WeightView& w, const float* bias, float* y, ThreadPool*) {
    const auto* sch = scheme::find_scheme(w.dtype);
    LOWBIT_CHECK(sch != nullptr && sch->dequantize_row != nullptr);
    const int64_t k_dim = w.n_cols, n_dim = w.n_rows;
    std::vector<float> row(static_cast<size_t>(k_dim));
    for (int64_t n = 0; n < n_dim; ++n) {
        sch->dequantize_row(w.row(n), row.data(), k_dim);
        for (int64_t i = 0; i < m; ++i) {
            const float* xi = x + i * k_dim;
            double acc = 0.0;
            for (int64_t k = 0; k < k_dim; ++k) acc += double(xi[k]) * double(row[size_t(k)]);
            if (bias) acc += double(bias[n]);
            y[i * n_dim + n] = static_cast<float>(acc);
        }
    }
}

void rms_norm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps) {
    for (int64_t r = 0; r < n_rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        double ss = 0.0;
        for (int64_t i = 0; i < n; ++i) ss += double(xr[i]) * double(xr[i]);
        const double inv = 1.0 / std::sqrt(ss / double(n) + double(eps));
        for (int64_t i = 0; i < n; ++i) yr[i] = static_cast<float>(double(xr[i]) * inv * double(weight[i]));
    }
}

void rope(float* x, int64_t n_tokens, int64_t row_stride, int64_t n_heads, int64_t head_dim, int64_t pos0,
          const float* inv_freq, RopeStyle style) {
    const int64_t half = head_dim / 2;
    for (int64_t t = 0; t < n_tokens; ++t) {
        const double pos = double(pos0 + t);
        for (int64_t h = 0; h < n_heads; ++h) {
            float* v = x + t * row_stride + h * head_dim;
            for (int64_t i = 0; i < half; ++i) {
                const double angle = pos * double(inv_freq[i]);
                const double c = std::cos(angle), s = std::sin(angle);
                const int64_t a = style == RopeStyle::kNeox ? i : 2 * i;
                const int64_t b = style == RopeStyle::kNeox ? i + half : 2 * i + 1;
                const double x0 = v[a], x1 = v[b];
                v[a] = static_cast<float>(x0 * c - x1 * s);
                v[b] = static_cast<float>(x0 * s + x1 * c);
            }
        }
    }
}

void softmax(float* x, int64_t n) {
    if (n <= 0) return;
    const float mx = *std::max_element(x, x + n);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += std::exp(double(x[i]) - double(mx));
    for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(std::exp(double(x[i]) - double(mx)) / sum);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const double g = gate[i];
        out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * double(up[i]));
    }
}

void attention(const AttentionArgs& a, ThreadPool*) {
    const int64_t group = a.n_heads / a.n_kv_heads;
    const int64_t q_stride = a.n_heads * a.head_dim, kv_stride = a.n_kv_heads * a.head_dim;
    std::vector<float> scores(static_cast<size_t>(a.n_past + a.n_tokens));
    for (int64_t t = 0; t < a.n_tokens; ++t) {
        const int64_t n_seen = a.n_past + t + 1; // causal: rows [0, n_past + t]
        for (int64_t h = 0; h < a.n_heads; ++h) {
            const float* q = a.q + t * q_stride + h * a.head_dim;
            const int64_t kvh = h / group;
            for (int64_t j = 0; j < n_seen; ++j) {
                const float* k = a.k + j * kv_stride + kvh * a.head_dim;
                double dot = 0.0;
                for (int64_t d = 0; d < a.head_dim; ++d) dot += double(q[d]) * double(k[d]);
                scores[size_t(j)] = static_cast<float>(dot * double(a.scale));
            }
            softmax(scores.data(), n_seen);
            float* o = a.out + t * q_stride + h * a.head_dim;
            for (int64_t d = 0; d < a.head_dim; ++d) {
                double acc = 0.0;
                for (int64_t j = 0; j < n_seen; ++j)
                    acc += double(scores[size_t(j)]) * double(a.v[j * kv_stride + kvh * a.head_dim + d]);
                o[d] = static_cast<float>(acc);
            }
        }
    }
}

} // namespace lowbit::kernel::ref
