// SPDX-License-Identifier: MIT
// AWQ scale and clip searches on one scalable group (contract in awq.h). The only heavy step here is the clip
// search (per group: one GEMM for the float output, one per shrink step); the scale search's cost is the caller's
// block callback, n_grid times.
#include "quantize/awq/awq.h"

#include "core/half.h"

#include <algorithm>
#include <cblas.h>
#include <cmath>
#include <limits>
#include <string>

namespace lowbit::quantize::awq {
namespace {

int64_t group_elems(const AwqOptions& o, int64_t n_in) {
    return o.group_size < 0 ? n_in : o.group_size;
}

// f16 rounding of a scale, kept positive (a scale that underflows f16 would divide by zero).
float f16_scale(float s) {
    const float r = f16_to_f32(f32_to_f16(s));
    return r > 0.0f ? r : std::ldexp(1.0f, -24);
}

// One group of n values in place; writes codes (offset to [0, 2^b)) when `codes` is non-null.
void quantize_group(float* w, int64_t n, const AwqOptions& o, bool f16_scales, uint8_t* codes, float& scale,
                    int32_t& zero) {
    if (o.zero_point) {
        float lo = w[0], hi = w[0];
        for (int64_t i = 1; i < n; ++i) lo = std::min(lo, w[i]), hi = std::max(hi, w[i]);
        const float max_int = float((1 << o.bits) - 1);
        float s = std::max(hi - lo, 1e-5f) / max_int;
        if (f16_scales) s = f16_scale(s);
        const float z = std::clamp(-std::nearbyint(lo / s), 0.0f, max_int);
        for (int64_t i = 0; i < n; ++i) {
            const float q = std::clamp(std::nearbyint(w[i] / s) + z, 0.0f, max_int);
            if (codes) codes[i] = uint8_t(q);
            w[i] = (q - z) * s;
        }
        scale = s, zero = int32_t(z);
        return;
    }
    float amax = 0.0f;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
    const float max_int = float((1 << (o.bits - 1)) - 1), min_int = -float(1 << (o.bits - 1));
    float s = std::max(amax, 1e-5f) / max_int;
    if (f16_scales) s = f16_scale(s);
    for (int64_t i = 0; i < n; ++i) {
        const float q = std::clamp(std::nearbyint(w[i] / s), min_int, max_int);
        if (codes) codes[i] = uint8_t(q - min_int);
        w[i] = q * s;
    }
    scale = s, zero = int32_t(-min_int);
}

} // namespace

Status validate(const AwqOptions& o, int64_t n_in) {
    if (o.bits != 2 && o.bits != 3 && o.bits != 4 && o.bits != 8)
        return make_error(ErrorCode::kUsage, "--bits for awq must be 2, 3, 4 or 8, got " + std::to_string(o.bits));
    if (o.group_size != -1 && (o.group_size < 1 || n_in % o.group_size != 0))
        return make_error(ErrorCode::kUsage, "awq group size " + std::to_string(o.group_size) +
                                                 " must be -1 or divide in_features " + std::to_string(n_in));
    if (o.n_grid < 1) return make_error(ErrorCode::kUsage, "awq n_grid must be >= 1, got " + std::to_string(o.n_grid));
    if (!(o.max_shrink >= 0.0 && o.max_shrink < 1.0))
        return make_error(ErrorCode::kUsage, "awq max_shrink must be in [0, 1), got " + std::to_string(o.max_shrink));
    if (o.n_sample_token < 1)
        return make_error(ErrorCode::kUsage,
                          "awq n_sample_token must be >= 1, got " + std::to_string(o.n_sample_token));
    return {};
}

void pseudo_quantize(float* w, int64_t n_rows, int64_t n_cols, const AwqOptions& o, bool f16_scales, GroupQuant* out) {
    const int64_t g = group_elems(o, n_cols), n_groups = n_cols / g;
    if (out) {
        out->n_rows = n_rows, out->n_cols = n_cols, out->n_groups = n_groups;
        out->codes.assign(size_t(n_rows * n_cols), 0);
        out->scales.assign(size_t(n_rows * n_groups), 0.0f);
        out->zeros.assign(size_t(n_rows * n_groups), 0);
    }
    float scale = 0.0f;
    int32_t zero = 0;
    for (int64_t r = 0; r < n_rows; ++r)
        for (int64_t j = 0; j < n_groups; ++j) {
            const int64_t at = r * n_cols + j * g;
            quantize_group(w + at, g, o, f16_scales, out ? out->codes.data() + at : nullptr, scale, zero);
            if (out) out->scales[size_t(r * n_groups + j)] = scale, out->zeros[size_t(r * n_groups + j)] = zero;
        }
}

void ChannelMeanAbs::add(const float* x, int64_t n_tokens) {
    const size_t n_cols = sum_.size();
    for (int64_t t = 0; t < n_tokens; ++t)
        for (size_t c = 0; c < n_cols; ++c) sum_[c] += std::fabs(double(x[size_t(t) * n_cols + c]));
    n_tokens_ += n_tokens;
}

std::vector<float> ChannelMeanAbs::mean() const {
    std::vector<float> m(sum_.size(), 0.0f);
    if (n_tokens_ > 0)
        for (size_t c = 0; c < sum_.size(); ++c) m[c] = float(sum_[c] / double(n_tokens_));
    return m;
}

std::vector<float> weight_mean(std::span<const LinearRef> linears, int64_t n_in, int64_t group_size) {
    const int64_t g = group_size < 0 ? n_in : group_size;
    std::vector<double> sum(size_t(n_in), 0.0);
    int64_t n_rows = 0;
    for (const LinearRef& l : linears) {
        for (int64_t r = 0; r < l.n_out; ++r) {
            const float* row = l.w + r * n_in;
            for (int64_t j = 0; j < n_in; j += g) {
                float amax = 0.0f;
                for (int64_t c = j; c < j + g; ++c) amax = std::max(amax, std::fabs(row[c]));
                const float inv = 1.0f / (amax + 1e-6f);
                for (int64_t c = j; c < j + g; ++c) sum[size_t(c)] += double(std::fabs(row[c]) * inv);
            }
        }
        n_rows += l.n_out;
    }
    std::vector<float> m(size_t(n_in), 0.0f);
    for (int64_t c = 0; c < n_in; ++c) m[size_t(c)] = n_rows ? float(sum[size_t(c)] / double(n_rows)) : 0.0f;
    return m;
}

std::vector<float> ratio_scales(std::span<const float> x_mean, std::span<const float> w_mean, double ratio,
                                bool duo_scaling) {
    const size_t n = x_mean.size();
    std::vector<float> s(n);
    for (size_t c = 0; c < n; ++c) {
        const double xr = std::pow(double(x_mean[c]), ratio);
        const double v = duo_scaling ? xr / (std::pow(double(w_mean[c]), 1.0 - ratio) + 1e-4) : xr;
        s[c] = float(std::max(v, 1e-4));
    }
    const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
    const float norm = float(std::sqrt(double(*hi) * double(*lo)));
    for (float& v : s) {
        v /= norm;
        if (!std::isfinite(v)) v = 1.0f;
    }
    return s;
}

Result<ScaleSearch> search_best_scale(std::span<const LinearRef> linears, int64_t n_in, std::span<const float> x_mean,
                                      const BlockLoss& block, const AwqOptions& o) {
    LOWBIT_TRY(validate(o, n_in));
    if (int64_t(x_mean.size()) != n_in || linears.empty())
        return make_error(ErrorCode::kBadInput, "awq scale search: input means have " + std::to_string(x_mean.size()) +
                                                    " channels, the weights " + std::to_string(n_in));
    const std::vector<float> w_mean = weight_mean(linears, n_in, o.group_size);
    ScaleSearch best;
    double best_loss = std::numeric_limits<double>::infinity();
    std::vector<std::vector<float>> weights(linears.size());
    for (int i = 0; i < o.n_grid; ++i) {
        const double ratio = double(i) / double(o.n_grid);
        std::vector<float> s = ratio_scales(x_mean, w_mean, ratio, o.duo_scaling);
        for (size_t j = 0; j < linears.size(); ++j) {
            const LinearRef& l = linears[j];
            auto& w = weights[j];
            w.assign(l.w, l.w + l.n_out * n_in);
            for (int64_t r = 0; r < l.n_out; ++r)
                for (int64_t c = 0; c < n_in; ++c) w[size_t(r * n_in + c)] *= s[size_t(c)];
            pseudo_quantize(w.data(), l.n_out, n_in, o);
            for (int64_t r = 0; r < l.n_out; ++r)
                for (int64_t c = 0; c < n_in; ++c) w[size_t(r * n_in + c)] /= s[size_t(c)];
        }
        LOWBIT_ASSIGN_OR_RETURN(double loss, block(weights));
        best.losses.push_back(loss);
        if (loss < best_loss) {
            best_loss = loss, best.best_index = i, best.best_ratio = ratio;
            best.scales = std::move(s);
        }
    }
    if (best.best_index < 0)
        return make_error(ErrorCode::kBadInput, "awq scale search: every candidate gave a non-finite loss "
                                                "(non-finite weights or activations?)");
    return best;
}

Result<std::vector<float>> search_best_clip(const float* w, int64_t n_out, int64_t n_in, const float* x,
                                            int64_t n_tokens, const AwqOptions& o) {
    LOWBIT_TRY(validate(o, n_in));
    if (n_tokens < 1) return make_error(ErrorCode::kBadInput, "awq clip search needs at least one token");
    const int64_t g = group_elems(o, n_in), n_groups = n_in / g;
    const int64_t step = std::max<int64_t>(1, n_tokens / o.n_sample_token);
    const int64_t nt = (n_tokens + step - 1) / step; // python's x[::step]
    const int n_shrink = int(o.max_shrink * o.n_grid);
    AwqOptions one_group = o;
    one_group.group_size = g;
    std::vector<float> best(size_t(n_out * n_groups));
    std::vector<float> xg(size_t(nt * g)), wg(size_t(n_out * g)), qg(wg.size());
    std::vector<float> org(size_t(nt * n_out)), cur(org.size());
    std::vector<float> org_max(static_cast<size_t>(n_out)), min_err(static_cast<size_t>(n_out));
    for (int64_t j = 0; j < n_groups; ++j) {
        for (int64_t t = 0; t < nt; ++t) std::copy_n(x + t * step * n_in + j * g, g, xg.data() + t * g);
        for (int64_t r = 0; r < n_out; ++r) {
            std::copy_n(w + r * n_in + j * g, g, wg.data() + r * g);
            float amax = 0.0f;
            for (int64_t c = 0; c < g; ++c) amax = std::max(amax, std::fabs(wg[size_t(r * g + c)]));
            org_max[size_t(r)] = amax, min_err[size_t(r)] = 1e9f, best[size_t(r * n_groups + j)] = amax;
        }
        // [nt, g] x [n_out, g]^T -> [nt, n_out]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(nt), int(n_out), int(g), 1.0f, xg.data(), int(g),
                    wg.data(), int(g), 0.0f, org.data(), int(n_out));
        for (int i = 0; i < n_shrink; ++i) {
            const float shrink = float(1.0 - double(i) / double(o.n_grid));
            for (int64_t r = 0; r < n_out; ++r) {
                const float m = org_max[size_t(r)] * shrink;
                for (int64_t c = 0; c < g; ++c) qg[size_t(r * g + c)] = std::clamp(wg[size_t(r * g + c)], -m, m);
            }
            pseudo_quantize(qg.data(), n_out, g, one_group);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(nt), int(n_out), int(g), 1.0f, xg.data(), int(g),
                        qg.data(), int(g), 0.0f, cur.data(), int(n_out));
            std::vector<double> err(size_t(n_out), 0.0);
            for (int64_t t = 0; t < nt; ++t)
                for (int64_t r = 0; r < n_out; ++r) {
                    const double d = double(cur[size_t(t * n_out + r)]) - double(org[size_t(t * n_out + r)]);
                    err[size_t(r)] += d * d;
                }
            for (int64_t r = 0; r < n_out; ++r) {
                const float e = float(err[size_t(r)] / double(nt));
                if (e < min_err[size_t(r)])
                    min_err[size_t(r)] = e, best[size_t(r * n_groups + j)] = org_max[size_t(r)] * shrink;
            }
        }
    }
    return best;
}

void apply_clip(float* w, int64_t n_out, int64_t n_in, int64_t group_size, std::span<const float> max_val) {
    const int64_t g = group_size < 0 ? n_in : group_size, n_groups = n_in / g;
    for (int64_t r = 0; r < n_out; ++r)
        for (int64_t c = 0; c < n_in; ++c) {
            const float m = max_val[size_t(r * n_groups + c / g)];
            w[r * n_in + c] = std::clamp(w[r * n_in + c], -m, m);
        }
}

double mean_squared_error(const float* a, const float* b, int64_t n) {
    double se = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const double d = double(a[i]) - double(b[i]);
        se += d * d;
    }
    return n > 0 ? se / double(n) : 0.0;
}

} // namespace lowbit::quantize::awq
