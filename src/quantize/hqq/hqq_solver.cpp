// SPDX-License-Identifier: MIT
// HQQ proximal solver (see hqq_solver.h). Per-group sums are accumulated in f64 and reduced in group order, so
// results do not depend on the thread count.
#include "quantize/hqq/hqq_solver.h"

#include "core/finite.h"
#include "core/half.h"
#include "quantize/hqq/hqq_pow.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <fmt/format.h>

namespace lowbit::quantize::hqq {
namespace {

using scheme::hqq::GroupedShape;
using scheme::hqq::HqqParams;

// The grouped matrix [R, C] and per-group state; group of (r, c) is r (axis 1) or c (axis 0).
struct Problem {
    const float* w = nullptr;
    GroupedShape gs;
    int axis = 1;
    float max_q = 15.0f;
    std::vector<float> s_inv; // [n_groups] hqq's "scale" during optimization (the inverse of the stored scale)
    std::vector<float> zero;  // [n_groups]
};

// Round half to even of v in [-1, 2^8] (callers pre-clamp): the 1.5 * 2^23 trick under the default rounding
// mode, identical to std::nearbyint there and inlinable/vectorizable (nearbyint is a libm call).
inline float round_half_even(float v) {
    const float magic = 12582912.0f; // 1.5 * 2^23; (v + magic) - magic is not folded without -ffast-math
    return (v + magic) - magic;
}

// The code of w: clamp(round(w * s + z), 0, max_q), with the pre-clamp that keeps round_half_even exact.
inline float code_of(float w, float s, float z, float max_q) {
    const float v = std::clamp(w * s + z, -1.0f, max_q + 1.0f);
    return std::clamp(round_half_even(v), 0.0f, max_q);
}

// Shrinkage of the lp proximal step: sign(d) * relu(|d| - |d|^(p-1) / beta); the power is lp_pow (hqq_pow.h),
// which the CUDA solver computes bit for bit alike.
inline float shrink(float d, float inv_beta, float p) {
    const float a = std::fabs(d);
    const float r = std::max(a - inv_beta * lp_pow(a, p - 1.0f), 0.0f);
    return d > 0 ? r : -r;
}

// 4 floats as a GCC/Clang vector extension (one SSE/NEON register): element-wise IEEE ops, bit-identical to
// the scalar code since nothing is contracted or reassociated.
typedef float V4 __attribute__((vector_size(16)));
inline V4 splat(float v) {
    return V4{} + v;
}
inline V4 vmax(V4 a, V4 b) {
    return a < b ? b : a;
}
inline V4 vmin(V4 a, V4 b) {
    return b < a ? b : a;
}

// Axis 1 (one group per grouped row): the hot loop, 4 lanes at a time; lanes are summed in f64 at the end.
// Returns the number of elements with |d| > thresh (they need the pow-based correction).
int64_t row_sums(const float* row, int64_t n, float s, float z, float max_q, float thresh, double* zero_sum,
                 double* err_sum) {
    const V4 vs = splat(s), vz = splat(z), lo = splat(-1.0f), hi = splat(max_q + 1.0f), mq = splat(max_q);
    const V4 magic = splat(12582912.0f), zero = splat(0.0f), one = splat(1.0f), th = splat(thresh);
    V4 zs = zero, er = zero, big = zero;
    int64_t c = 0;
    for (; c + 4 <= n; c += 4) {
        V4 wf;
        std::memcpy(&wf, row + c, sizeof(wf));
        const V4 v = vmin(vmax(wf * vs + vz, lo), hi); // == code_of, lane-wise
        const V4 wq = vmin(vmax((v + magic) - magic, zero), mq);
        const V4 d = wf - (wq - vz) / vs;
        const V4 a = d < zero ? -d : d;
        zs += wq - wf * vs;
        er += a;
        big += a > th ? one : zero;
    }
    double zsum = 0.0, esum = 0.0, n_big = 0.0;
    for (int l = 0; l < 4; ++l) {
        zsum += double(zs[l]);
        esum += double(er[l]);
        n_big += double(big[l]);
    }
    for (; c < n; ++c) {
        const float wf = row[c];
        const float wq = code_of(wf, s, z, max_q);
        const float av = std::fabs(wf - (wq - z) / s);
        zsum += double(wq - wf * s);
        esum += double(av);
        n_big += av > thresh ? 1.0 : 0.0;
    }
    *zero_sum += zsum;
    *err_sum += esum;
    return int64_t(n_big);
}

// One proximal iteration over grouped rows [r0, r1) x cols [c0, c1): adds the zero-update numerator
// sum(Wq - (W - We) s) and sum |W - Wr| per group. Elements with |d| <= thresh have We = 0 exactly
// (|d|^(2-p) <= 1/beta); the rare others are redone with the pow in a second pass.
void iterate_block(const Problem& pb, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float inv_beta, float p,
                   float thresh, double* zero_sum, double* err_sum) {
    const int64_t C = pb.gs.n_cols;
    for (int64_t r = r0; r < r1; ++r) {
        const float* row = pb.w + r * C;
        const float* s_row = pb.axis == 1 ? &pb.s_inv[size_t(r)] : &pb.s_inv[size_t(c0)];
        const float* z_row = pb.axis == 1 ? &pb.zero[size_t(r)] : &pb.zero[size_t(c0)];
        const int64_t step = pb.axis == 1 ? 0 : 1; // per-element group stride in s_row/z_row
        int64_t n_shrink = 0;
        if (pb.axis == 1)
            n_shrink = row_sums(row + c0, c1 - c0, *s_row, *z_row, pb.max_q, thresh, &zero_sum[r], &err_sum[r]);
        for (int64_t c = c0; pb.axis == 0 && c < c1; ++c) {
            const int64_t gi = (c - c0) * step;
            const float s = s_row[gi], z = z_row[gi], wf = row[c];
            const float wq = code_of(wf, s, z, pb.max_q);
            const float d = wf - (wq - z) / s;
            const float term = wq - wf * s, a = std::fabs(d);
            n_shrink += a > thresh;
            zero_sum[c] += double(term);
            err_sum[c] += double(a);
        }
        if (n_shrink > 0) { // replace the We = 0 terms of the shrunk elements
            for (int64_t c = c0; c < c1; ++c) {
                const int64_t gi = (c - c0) * step;
                const float s = s_row[gi], z = z_row[gi], wf = row[c];
                const float wq = code_of(wf, s, z, pb.max_q);
                const float d = wf - (wq - z) / s;
                if (std::fabs(d) <= thresh) continue;
                const float delta = (wq - (wf - shrink(d, inv_beta, p)) * s) - (wq - wf * s);
                zero_sum[pb.axis == 1 ? r : c] += double(delta);
            }
        }
    }
}

// Runs fn(r0, r1, c0, c1) over disjoint group ranges on the pool.
template <class Fn> void for_groups(ThreadPool& pool, const Problem& pb, Fn&& fn) {
    const int64_t R = pb.gs.n_rows, C = pb.gs.n_cols;
    if (pb.axis == 1) {
        pool.parallel_for(
            R, [&](int64_t b, int64_t e, int) { fn(b, e, int64_t(0), C); }, std::max<int64_t>(1, 16384 / C));
    } else {
        pool.parallel_for(
            C, [&](int64_t b, int64_t e, int) { fn(int64_t(0), R, b, e); }, 64);
    }
}

void init_scale_zero(ThreadPool& pool, Problem& pb, int64_t n_groups, bool round_zero) {
    std::vector<float> mn(size_t(n_groups), INFINITY), mx(size_t(n_groups), -INFINITY);
    for_groups(pool, pb, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
        for (int64_t r = r0; r < r1; ++r)
            for (int64_t c = c0; c < c1; ++c) {
                const size_t g = size_t(pb.axis == 1 ? r : c);
                const float v = pb.w[r * pb.gs.n_cols + c];
                mn[g] = std::min(mn[g], v);
                mx[g] = std::max(mx[g], v);
            }
    });
    pb.s_inv.resize(size_t(n_groups));
    pb.zero.resize(size_t(n_groups));
    for (size_t g = 0; g < size_t(n_groups); ++g) {
        pb.s_inv[g] = std::min(pb.max_q / (mx[g] - mn[g]), 2e4f); // max == min: inf, clamped like hqq
        pb.zero[g] = -mn[g] * pb.s_inv[g];
        if (round_zero) pb.zero[g] = std::nearbyint(pb.zero[g]);
    }
}

// optimize_weights_proximal_legacy; returns the error of every iteration run.
std::vector<double> solve(ThreadPool& pool, Problem& pb, int64_t n_groups, const HqqOptions& o) {
    const int64_t group_elems = pb.gs.n_rows * pb.gs.n_cols / n_groups;
    const double numel = double(pb.gs.n_rows) * double(pb.gs.n_cols);
    std::vector<double> errors;
    std::vector<double> zero_sum(static_cast<size_t>(n_groups)), err_sum(static_cast<size_t>(n_groups));
    double beta = o.beta, best = 1e4;
    for (int it = 0; it < o.iters; ++it) {
        std::fill(zero_sum.begin(), zero_sum.end(), 0.0);
        std::fill(err_sum.begin(), err_sum.end(), 0.0);
        const float inv_beta = float(1.0 / beta);
        // relu(a - a^(p-1)/beta) > 0  <=>  a^(2-p) > 1/beta; slightly lowered so rounding never skips a case.
        const float thresh = float(std::pow(double(inv_beta), 1.0 / (2.0 - double(o.lp_norm))) * (1.0 - 1e-4));
        for_groups(pool, pb, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
            iterate_block(pb, r0, r1, c0, c1, inv_beta, o.lp_norm, thresh, zero_sum.data(), err_sum.data());
        });
        double err = 0.0;
        for (int64_t g = 0; g < n_groups; ++g) {
            pb.zero[size_t(g)] = float(zero_sum[size_t(g)] / double(group_elems));
            err += err_sum[size_t(g)];
        }
        beta *= o.kappa;
        err = double(float(err / numel)); // hqq: float(torch.abs(W_f - W_r).mean()), an f32 mean
        errors.push_back(err);
        if (err < best) {
            best = err;
        } else {
            break;
        }
    }
    return errors;
}

// The same iterations as solve(), cache-blocked: each thread runs ALL iterations on a block of ~16K weights while
// it is in cache, then the next block (one pass over W instead of one per iteration). A group's trajectory
// depends only on its own weights and the global beta sequence; only the early stop is global, so every
// iteration's per-group error and zero are kept, the errors are summed in group order as solve() does, and the
// zeros of the stopping iteration are taken: the result is bit-identical to solve(). Iterations after the stop
// are wasted work (hqq rarely stops before 20 on real weights).
std::vector<double> solve_blocked(ThreadPool& pool, Problem& pb, int64_t n_groups, const HqqOptions& o) {
    const int iters = o.iters;
    const size_t G = size_t(n_groups);
    const int64_t group_elems = pb.gs.n_rows * pb.gs.n_cols / n_groups;
    const double numel = double(pb.gs.n_rows) * double(pb.gs.n_cols);
    std::vector<float> inv_beta(static_cast<size_t>(iters)), thresh(static_cast<size_t>(iters));
    double beta = o.beta;
    for (size_t it = 0; it < size_t(iters); ++it) { // solve()'s sequence, computed alike
        inv_beta[it] = float(1.0 / beta);
        thresh[it] = float(std::pow(double(inv_beta[it]), 1.0 / (2.0 - double(o.lp_norm))) * (1.0 - 1e-4));
        beta *= o.kappa;
    }
    std::vector<double> err_all(size_t(iters) * G), zero_sum(G);
    std::vector<float> zero_hist(size_t(iters) * G);
    const auto run = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
        const int64_t g0 = pb.axis == 1 ? r0 : c0, g1 = pb.axis == 1 ? r1 : c1;
        for (size_t it = 0; it < size_t(iters); ++it) {
            double* es = &err_all[it * G];
            std::fill(zero_sum.begin() + g0, zero_sum.begin() + g1, 0.0);
            std::fill(es + g0, es + g1, 0.0);
            iterate_block(pb, r0, r1, c0, c1, inv_beta[it], o.lp_norm, thresh[it], zero_sum.data(), es);
            for (int64_t g = g0; g < g1; ++g) {
                pb.zero[size_t(g)] = float(zero_sum[size_t(g)] / double(group_elems));
                zero_hist[it * G + size_t(g)] = pb.zero[size_t(g)];
            }
        }
    };
    constexpr int64_t kBlockElems = 16384;
    for_groups(pool, pb, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
        if (pb.axis == 1) {
            const int64_t step = std::max<int64_t>(1, kBlockElems / pb.gs.n_cols);
            for (int64_t r = r0; r < r1; r += step) run(r, std::min(r1, r + step), c0, c1);
        } else {
            const int64_t step = std::max<int64_t>(1, kBlockElems / pb.gs.n_rows);
            for (int64_t c = c0; c < c1; c += step) run(r0, r1, c, std::min(c1, c + step));
        }
    });
    std::vector<double> errors;
    double best = 1e4;
    size_t last = size_t(iters) - 1;
    for (size_t it = 0; it < size_t(iters); ++it) {
        double err = 0.0;
        for (size_t g = 0; g < G; ++g) err += err_all[it * G + g];
        err = double(float(err / numel));
        errors.push_back(err);
        if (err < best) {
            best = err;
        } else {
            last = it;
            break;
        }
    }
    std::copy(zero_hist.begin() + ptrdiff_t(last * G), zero_hist.begin() + ptrdiff_t((last + 1) * G), pb.zero.begin());
    return errors;
}

float round_meta(float v, DType dtype) {
    return dtype == DType::kF16 ? f16_to_f32(f32_to_f16(v)) : v;
}

// scheme::hqq::pack of the [R, C] codes, rows of the packed matrix in parallel (same bytes).
std::vector<uint8_t> pack_codes(const std::vector<uint8_t>& q, int nbits, int64_t R, int64_t C, ThreadPool& pool) {
    if (nbits == 8) return q;
    const int64_t step = scheme::hqq::packed_shape(nbits, R, C)[0];
    std::vector<uint8_t> out(size_t(step * C) * (nbits == 3 ? 4 : 1));
    pool.parallel_for(
        step,
        [&](int64_t i0, int64_t i1, int) {
            for (int64_t i = i0; i < i1; ++i)
                for (int64_t c = 0; c < C; ++c) {
                    if (nbits == 3) {
                        uint32_t v = 0;
                        for (int64_t k = 0; k < 10 && k * step + i < R; ++k)
                            v |= uint32_t(q[size_t((k * step + i) * C + c)]) << (27 - 3 * k);
                        std::memcpy(&out[size_t(i * C + c) * 4], &v, 4);
                    } else {
                        uint32_t v = 0;
                        for (int64_t k = 0; k < 8 / nbits; ++k)
                            v |= uint32_t(q[size_t((k * step + i) * C + c)]) << (8 - nbits * (k + 1));
                        out[size_t(i * C + c)] = uint8_t(v);
                    }
                }
        },
        std::max<int64_t>(1, 65536 / C));
    return out;
}

// Final codes with the final zero (hqq: round(tensor * scale + zero).clamp), stored scale 1/s and zero rounded to
// the meta dtype (as scheme::hqq::make_tensor rounds them), the reconstruction sums, and the packed tensor.
void finish(ThreadPool& pool, Problem& pb, const HqqParams& params, const Shape& shape, int64_t n_groups,
            HqqSolveResult* res) {
    const size_t G = size_t(n_groups);
    std::vector<float> scale(G), zero(G);
    for (size_t g = 0; g < G; ++g) {
        scale[g] = round_meta(1.0f / pb.s_inv[g], params.meta_dtype);
        zero[g] = round_meta(pb.zero[g], params.meta_dtype);
    }
    const int64_t R = pb.gs.n_rows, C = pb.gs.n_cols;
    std::vector<uint8_t> q(size_t(R * C));
    constexpr int64_t kBlock = 1024; // groups per partial sum
    const int64_t n_blocks = (n_groups + kBlock - 1) / kBlock;
    std::vector<HqqReconSums> part(static_cast<size_t>(n_blocks));
    pool.parallel_for(n_blocks, [&](int64_t b0, int64_t b1, int) {
        for (int64_t b = b0; b < b1; ++b) {
            HqqReconSums& ps = part[size_t(b)];
            for (int64_t g = b * kBlock; g < std::min(n_groups, (b + 1) * kBlock); ++g) {
                const int64_t n = pb.axis == 1 ? C : R;
                for (int64_t k = 0; k < n; ++k) {
                    const int64_t i = pb.axis == 1 ? g * C + k : k * C + g;
                    const float wf = pb.w[i];
                    const float code = code_of(wf, pb.s_inv[size_t(g)], pb.zero[size_t(g)], pb.max_q);
                    q[size_t(i)] = uint8_t(code);
                    const double d = double(wf) - double((code - zero[size_t(g)]) * scale[size_t(g)]);
                    ps.sq_err += d * d;
                    ps.max_abs = std::max(ps.max_abs, std::fabs(d));
                    ps.sum += double(wf);
                    ps.sum_sq += double(wf) * double(wf);
                }
            }
        }
    });
    for (const HqqReconSums& ps : part) {
        res->recon.sq_err += ps.sq_err;
        res->recon.max_abs = std::max(res->recon.max_abs, ps.max_abs);
        res->recon.sum += ps.sum;
        res->recon.sum_sq += ps.sum_sq;
    }
    scheme::hqq::HqqTensor& t = res->tensor;
    t.params = params;
    t.shape = shape;
    t.w_q = pack_codes(q, params.nbits, R, C, pool);
    t.scale = std::move(scale);
    t.zero = std::move(zero);
}

} // namespace

Status validate_hqq_options(const HqqOptions& o) {
    if (!(o.lp_norm > 0.0f && o.lp_norm <= 1.0f))
        return make_error(ErrorCode::kUsage, fmt::format("HQQ lp_norm must be in (0, 1], got {}", o.lp_norm));
    if (!(o.beta > 0.0)) return make_error(ErrorCode::kUsage, fmt::format("HQQ beta must be > 0, got {}", o.beta));
    if (!(o.kappa >= 1.0)) return make_error(ErrorCode::kUsage, fmt::format("HQQ kappa must be >= 1, got {}", o.kappa));
    if (o.iters < 1 || o.iters > 10000)
        return make_error(ErrorCode::kUsage, fmt::format("HQQ iters must be in [1, 10000], got {}", o.iters));
    return ok_status();
}

Result<HqqSolveResult> quantize_hqq(const float* w, const Shape& shape, const HqqParams& params,
                                    const HqqOptions& options, ThreadPool* pool_arg) {
    LOWBIT_TRY(scheme::hqq::validate(params, shape));
    LOWBIT_TRY(validate_hqq_options(options));
    const int64_t numel = shape.n_elems();
    ThreadPool& pool = pool_arg ? *pool_arg : ThreadPool::global();
    std::atomic<int64_t> first_bad{numel}; // the first non-finite element, found on the pool
    pool.parallel_for(
        numel,
        [&](int64_t b, int64_t e, int) {
            for (int64_t i = b; i < e; ++i)
                if (!std::isfinite(w[i])) {
                    int64_t cur = first_bad.load();
                    while (i < cur && !first_bad.compare_exchange_weak(cur, i)) {
                    }
                    return;
                }
        },
        1 << 16);
    if (const int64_t i = first_bad.load(); i < numel)
        return non_finite_error("", i, shape.n_dims == 2 ? shape[1] : 0, w[i]);
    HqqSolveResult res;
    res.round_zero = options.round_zero.value_or(params.nbits == 4);
    Problem pb;
    pb.w = w;
    pb.gs = scheme::hqq::grouped_shape(params, shape);
    pb.axis = params.axis;
    pb.max_q = float((1 << params.nbits) - 1);
    const int64_t n_groups = scheme::hqq::n_groups(params, pb.gs);
    init_scale_zero(pool, pb, n_groups, res.round_zero);
    // Blocked unless its per-iteration history (12 bytes per group and iteration) would be large.
    const bool blocked = options.blocked && double(options.iters) * double(n_groups) * 12.0 <= double(1u << 30);
    if (options.optimize)
        res.errors = blocked ? solve_blocked(pool, pb, n_groups, options) : solve(pool, pb, n_groups, options);
    finish(pool, pb, params, shape, n_groups, &res);
    return res;
}

} // namespace lowbit::quantize::hqq
