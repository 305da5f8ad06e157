// SPDX-License-Identifier: MIT
// GPTQ loop (see gptq.h). Rows are independent inside a block once the block's group parameters are known
// (gptq.py computes them from W as it stands at the block start), so rows run in parallel.
#include "quantize/gptq/gptq.h"

#include "core/finite.h"
#include "core/log.h"
#include "core/thread_pool.h"

#include <algorithm>
#include <cblas.h>
#include <cmath>
#include <numeric>
#include <string>

extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dpotri_(const char* uplo, const int* n, double* a, const int* lda, int* info);
}

namespace lowbit::quantize::gptq {

void IntGridQuantizer::find_params(const float* w, int64_t ld, int64_t n_rows, int64_t col_begin, int64_t n_cols) {
    scale_.assign(size_t(n_rows), 0.0f);
    zero_.assign(size_t(n_rows), 0.0f);
    for (int64_t r = 0; r < n_rows; ++r) {
        const float* row = w + r * ld + col_begin;
        float xmin = 0.0f, xmax = 0.0f; // the range always contains 0
        for (int64_t c = 0; c < n_cols; ++c) {
            xmin = std::min(xmin, row[c]);
            xmax = std::max(xmax, row[c]);
        }
        if (sym_) {
            xmax = std::max(std::fabs(xmin), xmax);
            if (xmin < 0) xmin = -xmax;
        }
        if (xmin == 0.0f && xmax == 0.0f) {
            xmin = -1.0f;
            xmax = 1.0f;
        }
        const float scale = (xmax - xmin) / float(maxq_);
        scale_[size_t(r)] = scale;
        zero_[size_t(r)] = sym_ ? float(maxq_ + 1) / 2.0f : std::nearbyint(-xmin / scale);
    }
}

float IntGridQuantizer::quantize(int64_t row, int64_t /*col*/, float x, int32_t& code) const {
    const float s = scale_[size_t(row)], z = zero_[size_t(row)];
    const float q = std::clamp(std::nearbyint(x / s) + z, 0.0f, float(maxq_));
    code = int32_t(q);
    return s * (q - z);
}

void IntGridQuantizer::params(std::vector<float>& scale, std::vector<int32_t>& zero) const {
    scale = scale_;
    zero.resize(zero_.size());
    for (size_t i = 0; i < zero_.size(); ++i) zero[i] = int32_t(zero_[i]);
}

Status validate(const GptqOptions& opt, int64_t n_cols) {
    if (opt.bits != 2 && opt.bits != 3 && opt.bits != 4 && opt.bits != 8)
        return make_error(ErrorCode::kUsage, "GPTQ bits must be 2, 3, 4 or 8, got " + std::to_string(opt.bits));
    if (opt.group_size != -1 && (opt.group_size <= 0 || n_cols % opt.group_size != 0))
        return make_error(ErrorCode::kUsage, "GPTQ group size " + std::to_string(opt.group_size) +
                                                 " does not divide the input dimension " + std::to_string(n_cols) +
                                                 " (use -1 for per-channel, or 32/64/128)");
    if (opt.block_size <= 0) return make_error(ErrorCode::kUsage, "GPTQ block size must be positive");
    if (!(opt.damp_percent > 0.0) || opt.damp_percent > 1.0)
        return make_error(ErrorCode::kUsage, "GPTQ damping must be in (0, 1]");
    return ok_status();
}

namespace {

// Inverse of H (+ damping) as the upper Cholesky factor U (row-major) with H⁻¹ = UᵀU, as gptq.py's
// cholesky(cholesky_inverse(cholesky(H)), upper=True). Grows damping ×10 until H is positive definite.
Result<std::vector<float>> inverse_cholesky_upper(std::vector<double>& h, int64_t k, double damp_percent,
                                                  double& damp_used) {
    const int n = int(k);
    double mean_diag = 0.0;
    for (int64_t i = 0; i < k; ++i) mean_diag += h[size_t(i * k + i)];
    mean_diag /= double(k);
    const std::vector<double> h0 = h;
    for (double damp = damp_percent;; damp *= 10.0) {
        h = h0;
        for (int64_t i = 0; i < k; ++i) h[size_t(i * k + i)] += damp * mean_diag;
        int info = 0;
        // Symmetric: row-major and column-major are the same matrix; 'L' column-major = upper row-major.
        dpotrf_("L", &n, h.data(), &n, &info);
        if (info == 0) dpotri_("L", &n, h.data(), &n, &info);
        if (info == 0) {
            for (int64_t c = 0; c < k; ++c) // mirror col-major lower (row-major upper) into the other half
                for (int64_t r = c + 1; r < k; ++r) h[size_t(r * k + c)] = h[size_t(c * k + r)];
            dpotrf_("L", &n, h.data(), &n, &info);
        }
        if (info == 0) {
            damp_used = damp;
            if (damp != damp_percent)
                log_warn("GPTQ: Hessian not positive definite with damping {:.4g}; used {:.4g}", damp_percent, damp);
            std::vector<float> u(size_t(k * k), 0.0f);
            for (int64_t i = 0; i < k; ++i)
                for (int64_t j = i; j < k; ++j) u[size_t(i * k + j)] = float(h[size_t(i * k + j)]);
            return u;
        }
        if (damp >= 1.0)
            return make_error(ErrorCode::kBadInput, "GPTQ: the Hessian is not positive definite even with 100% "
                                                    "damping (calibration activations may contain NaN/Inf)");
    }
}

} // namespace

Result<GptqResult> gptq_quantize_with(const float* w_in, int64_t n_rows, int64_t n_cols, std::vector<double> h,
                                      const GptqOptions& opt, const ColumnQuantizer& grid) {
    LOWBIT_TRY(validate(opt, n_cols));
    if (h.size() != size_t(n_cols * n_cols))
        return make_error(ErrorCode::kInternal, "GPTQ: Hessian size does not match the weight's columns");
    const int64_t N = n_rows, K = n_cols;
    const int64_t gs = opt.group_size == -1 ? K : opt.group_size;
    if (grid.required_group_size() != 0 && grid.required_group_size() != gs)
        return make_error(ErrorCode::kUsage, "GPTQ: this grid needs group size " +
                                                 std::to_string(grid.required_group_size()) + ", got " +
                                                 std::to_string(gs));
    LOWBIT_TRY(check_finite_weights(w_in, N * K, K, ""));  // a NaN would reach an int32 cast below
    std::vector<float> W(w_in, w_in + N * K);              // [N, K], becomes the permuted working copy
    std::unique_ptr<ColumnQuantizer> proto = grid.clone(); // `grid` with the Hessian diagonal; every group clones it
    {
        std::vector<double> diag(static_cast<size_t>(K));
        for (int64_t c = 0; c < K; ++c) diag[size_t(c)] = h[size_t(c * K + c)] == 0.0 ? 1.0 : h[size_t(c * K + c)];
        proto->set_hessian_diag(diag);
    }

    std::unique_ptr<ColumnQuantizer> channel_q;
    if (opt.group_size == -1) { // per-channel params from the original W (gptq.py: before dead columns)
        channel_q = proto->clone();
        channel_q->find_params(W.data(), K, N, 0, K);
    }
    for (int64_t c = 0; c < K; ++c) { // dead inputs: never activated, so their weights do not matter
        if (h[size_t(c * K + c)] == 0.0) {
            h[size_t(c * K + c)] = 1.0;
            for (int64_t r = 0; r < N; ++r) W[size_t(r * K + c)] = 0.0f;
        }
    }
    std::vector<std::unique_ptr<ColumnQuantizer>> static_q;
    if (opt.static_groups && opt.group_size != -1) {
        for (int64_t g = 0; g < K / gs; ++g) {
            static_q.push_back(proto->clone());
            static_q.back()->find_params(W.data(), K, N, g * gs, gs);
        }
    }
    std::vector<int32_t> perm(static_cast<size_t>(K));
    std::iota(perm.begin(), perm.end(), 0);
    if (opt.desc_act) {
        std::stable_sort(perm.begin(), perm.end(), [&](int32_t a, int32_t b) {
            return h[size_t(a) * size_t(K) + size_t(a)] > h[size_t(b) * size_t(K) + size_t(b)];
        });
        std::vector<float> wp(W.size());
        std::vector<double> hp(h.size());
        for (int64_t r = 0; r < N; ++r)
            for (int64_t c = 0; c < K; ++c) wp[size_t(r * K + c)] = W[size_t(r * K + perm[size_t(c)])];
        for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < K; ++j)
                hp[size_t(i * K + j)] = h[size_t(perm[size_t(i)]) * size_t(K) + size_t(perm[size_t(j)])];
        W.swap(wp);
        h.swap(hp);
    }
    GptqResult res;
    LOWBIT_ASSIGN_OR_RETURN(std::vector<float> hinv, inverse_cholesky_upper(h, K, opt.damp_percent, res.damp_used));
    h = {}; // free K*K doubles

    const int64_t n_groups = K / gs;
    res.n_rows = N;
    res.n_cols = K;
    res.n_groups = n_groups;
    std::vector<int32_t> codes_p(static_cast<size_t>(N * K)); // processing order
    std::vector<float> deq_p(static_cast<size_t>(N * K));
    res.scales.assign(size_t(N * n_groups), 0.0f);
    res.zeros.assign(size_t(N * n_groups), 0);
    std::vector<double> row_loss(size_t(N), 0.0);
    auto record_params = [&](const ColumnQuantizer& q, int64_t g) {
        std::vector<float> s;
        std::vector<int32_t> z;
        q.params(s, z);
        for (int64_t r = 0; r < N; ++r) {
            res.scales[size_t(r * n_groups + g)] = s[size_t(r)];
            res.zeros[size_t(r * n_groups + g)] = z[size_t(r)];
        }
    };
    if (channel_q) record_params(*channel_q, 0);
    for (int64_t g = 0; g < int64_t(static_q.size()); ++g) record_params(*static_q[size_t(g)], g);

    std::vector<std::unique_ptr<ColumnQuantizer>> group_q; // dynamic groups, in processing order
    for (int64_t i1 = 0; i1 < K; i1 += opt.block_size) {
        const int64_t i2 = std::min(i1 + opt.block_size, K), count = i2 - i1;
        // The quantizer of each column of the block, fixed at the block start (a group may span blocks).
        std::vector<const ColumnQuantizer*> col_q(static_cast<size_t>(count));
        for (int64_t i = 0; i < count; ++i) {
            const int64_t col = i1 + i;
            if (channel_q) {
                col_q[size_t(i)] = channel_q.get();
            } else if (!static_q.empty()) {
                col_q[size_t(i)] = static_q[size_t(perm[size_t(col)] / gs)].get();
            } else {
                if (col % gs == 0) {
                    group_q.push_back(proto->clone());
                    group_q.back()->find_params(W.data(), K, N, col, std::min(gs, K - col));
                    record_params(*group_q.back(), col / gs);
                }
                col_q[size_t(i)] = group_q.back().get();
            }
        }
        std::vector<float> err(static_cast<size_t>(N * count)); // Err1 [N, count]
        ThreadPool::global().parallel_for(
            N,
            [&](int64_t r0, int64_t r1, int) {
                std::vector<float> w1(static_cast<size_t>(count));
                for (int64_t r = r0; r < r1; ++r) {
                    std::copy_n(&W[size_t(r * K + i1)], count, w1.begin());
                    for (int64_t i = 0; i < count; ++i) {
                        const float d = hinv[size_t((i1 + i) * K + i1 + i)];
                        int32_t code = 0;
                        const float q = col_q[size_t(i)]->quantize(r, perm[size_t(i1 + i)], w1[size_t(i)], code);
                        codes_p[size_t(r * K + i1 + i)] = code;
                        deq_p[size_t(r * K + i1 + i)] = q;
                        const float e = (w1[size_t(i)] - q) / d;
                        row_loss[size_t(r)] += double(e) * double(e) / 2.0;
                        const float* hrow = &hinv[size_t((i1 + i) * K + i1)];
                        for (int64_t j = i; j < count; ++j) w1[size_t(j)] -= e * hrow[j];
                        err[size_t(r * count + i)] = e;
                    }
                }
            },
            16);
        if (i2 < K) // lazy batch update of the remaining columns: W[:, i2:] -= Err1 · Hinv[i1:i2, i2:]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(N), int(K - i2), int(count), -1.0f, err.data(),
                        int(count), &hinv[size_t(i1 * K + i2)], int(K), 1.0f, &W[size_t(i2)], int(K));
    }
    res.loss = std::accumulate(row_loss.begin(), row_loss.end(), 0.0);

    // Back to the original column order; g_idx as AutoGPTQ defines it.
    res.perm = perm;
    res.codes.resize(size_t(N * K));
    res.dequant.resize(size_t(N * K));
    res.g_idx.resize(size_t(K));
    for (int64_t p = 0; p < K; ++p) {
        const int64_t c = perm[size_t(p)];
        res.g_idx[size_t(c)] = int32_t(opt.static_groups || opt.group_size == -1 ? c / gs : p / gs);
        for (int64_t r = 0; r < N; ++r) {
            res.codes[size_t(r * K + c)] = codes_p[size_t(r * K + p)];
            res.dequant[size_t(r * K + c)] = deq_p[size_t(r * K + p)];
        }
    }
    return res;
}

Result<GptqResult> gptq_quantize(const float* w, int64_t n_rows, int64_t n_cols, std::vector<double> h,
                                 const GptqOptions& opt) {
    return gptq_quantize_with(w, n_rows, n_cols, std::move(h), opt, IntGridQuantizer(opt.bits, opt.sym));
}

void HessianAccumulator::add(const float* x, int64_t n_tokens) {
    if (n_tokens <= 0) return;
    std::vector<double> xd(x, x + n_tokens * n_cols_);
    // h (upper, row-major) += xᵀx: column-major view of row-major x [n_tokens, K] is xᵀ [K, n_tokens].
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, int(n_cols_), int(n_tokens), 1.0, xd.data(), int(n_cols_), 1.0,
                h_.data(), int(n_cols_));
    n_samples_ += n_tokens;
}

std::vector<double> HessianAccumulator::finish() const {
    std::vector<double> h(h_.size());
    const double s = n_samples_ > 0 ? 2.0 / double(n_samples_) : 0.0;
    for (int64_t i = 0; i < n_cols_; ++i)
        for (int64_t j = i; j < n_cols_; ++j) {
            const double v = h_[size_t(i * n_cols_ + j)] * s;
            h[size_t(i * n_cols_ + j)] = v;
            h[size_t(j * n_cols_ + i)] = v;
        }
    return h;
}

} // namespace lowbit::quantize::gptq
