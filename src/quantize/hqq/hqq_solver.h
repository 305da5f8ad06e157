// SPDX-License-Identifier: MIT
// HQQ (half-quadratic quantization): calibration-free choice of the zero point by a proximal solver that
// minimizes ||W - dequant(quant(W))||_p^p with p < 1 (robust to outliers). Port of hqq/core/quantize.py
// Quantizer.quantize + hqq/core/optimize.py optimize_weights_proximal_legacy, in f32 like hqq on CPU:
//   s = min((2^b - 1) / (max - min), 2e4) per group;  z = -min * s  (rounded if round_zero)
//   repeat iters times:  Wq = clamp(round(W s + z), 0, 2^b - 1);  Wr = (Wq - z) / s
//       We = sign(W - Wr) * relu(|W - Wr| - |W - Wr|^(p-1) / beta)       (the lp shrinkage)
//       z  = mean over the group of (Wq - (W - We) s);  beta *= kappa
//       err = mean |W - Wr| over the whole tensor; stop as soon as err does not decrease
//         (as in hqq, the zero of that last update is kept)
//   stored scale = 1 / s, zero = z.
// The power |W - Wr|^(p-1) is lp_pow (hqq_pow.h), which the CUDA solver (hqq_cuda.h) computes bit for bit alike.
// Cost: parallel over groups, no per-element temporaries; one streaming pass over W per iteration (<= 20).
// Option `blocked`: every iteration of a cache-sized block of groups before the next block (one pass over W in
// all; per-iteration zeros/errors kept, 12 bytes per group and iteration), bit-identical; on 16 cores of the
// H100/H200 hosts it saved CPU time (2.1 s vs 2.7 s per 4096x11008) but not wall time (~0.43 s both), so it is off.
#pragma once

#include "core/error.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "scheme/hqq/hqq.h"

#include <optional>
#include <vector>

namespace lowbit::quantize::hqq {

// hqq's opt_params for the proximal solver, named as hqq names them.
struct HqqOptions {
    bool optimize = true;           // false: plain min-max rounding (hqq optimize=False)
    std::optional<bool> round_zero; // unset: hqq_base_quant_config's default (true for 4-bit only)
    float lp_norm = 0.7f;           // p of the lp norm, in (0, 1]
    double beta = 10.0;             // initial penalty
    double kappa = 1.01;            // beta growth per iteration (> 1)
    int iters = 20;                 // maximum iterations
    bool blocked = false;           // all iterations per cache-sized block: same bytes, no wall-time gain measured
};

// Sums of dequant(quant(W)) (scale/zero as stored) against W, for the error report (order of summation: fixed
// blocks of groups, so independent of the thread count; not measure_error's order, equal within rounding).
struct HqqReconSums {
    double sq_err = 0.0;  // sum (W - W')^2
    double max_abs = 0.0; // max |W - W'|
    double sum = 0.0;     // sum W
    double sum_sq = 0.0;  // sum W^2
};

struct HqqSolveResult {
    scheme::hqq::HqqTensor tensor;
    HqqReconSums recon;
    std::vector<double> errors; // mean |W - Wr| of every iteration run (the last one is the stopping one)
    bool round_zero = false;    // resolved setting
};

// kUsage when an option is out of range (names the option and the value).
Status validate_hqq_options(const HqqOptions& options);

// Quantizes w ([shape.n_elems()] f32, row-major) with HQQ. `pool` null: ThreadPool::global().
// Errors: kUsage for bad params/options (names the value), kBadInput for non-finite weights.
Result<HqqSolveResult> quantize_hqq(const float* w, const Shape& shape, const scheme::hqq::HqqParams& params,
                                    const HqqOptions& options, ThreadPool* pool = nullptr);

} // namespace lowbit::quantize::hqq
