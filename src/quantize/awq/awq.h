// SPDX-License-Identifier: MIT
// AWQ (Lin et al. 2023) on one scalable group, as AutoAWQ 0.2.x (awq/quantize/quantizer.py) computes it: activation-
// aware per-input-channel scales chosen by a grid search on the output error of a block, then a per-group clipping
// search. No model knowledge here: the caller passes the block (a callback that runs the group's linears with the
// candidate weights and returns its output error) and folds the chosen scales into the model.
// Goals: AutoAWQ's formulas (pseudo_quantize_tensor, _search_best_scale with duo scaling, _compute_best_clip).
// Non-goals: the model walk, scale folding into norms, packing (pipeline/quantize/awq_job, scheme/awq).
// Arithmetic is f32 with f64 loss sums (AutoAWQ runs the same formulas in f16 on the GPU).
#pragma once

#include "core/error.h"
#include "quantize/awq/awq_options.h"

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace lowbit::quantize::awq {

// pseudo_quantize_tensor, in place on w [n_rows, n_cols] f32, per group of g consecutive columns of a row:
//   asym: s = max(max - min, 1e-5) / (2^b - 1), z = clamp(-round(min / s), 0, 2^b - 1),
//         w <- (clamp(round(w / s) + z, 0, 2^b - 1) - z) * s
//   sym:  s = max(max |w|, 1e-5) / (2^(b-1) - 1), w <- clamp(round(w / s), -2^(b-1), 2^(b-1) - 1) * s
// round = half to even (torch.round). f16_scales: s is rounded to f16 first (what a checkpoint stores; codes and
// zeros are then chosen for that scale). `out` (optional) receives codes/scales/zeros. Preconditions: validate().
void pseudo_quantize(float* w, int64_t n_rows, int64_t n_cols, const AwqOptions& options, bool f16_scales = false,
                     GroupQuant* out = nullptr);

// x̄: mean |x| per column of x [n_tokens, n_cols] (f64 sums). Accumulates over calls (AutoAWQ sums in chunks).
class ChannelMeanAbs {
  public:
    explicit ChannelMeanAbs(int64_t n_cols) : sum_(size_t(n_cols), 0.0) {}
    void add(const float* x, int64_t n_tokens);
    std::vector<float> mean() const; // [n_cols]; zeros when nothing was added
    int64_t n_tokens() const { return n_tokens_; }

  private:
    std::vector<double> sum_;
    int64_t n_tokens_ = 0;
};

// A weight matrix of the group, [n_out, n_in] f32, row-major (not owned).
struct LinearRef {
    const float* w = nullptr;
    int64_t n_out = 0;
};

// w̄ [n_in]: the group's weights stacked along rows, each group of g columns scaled by 1 / (max |w| + 1e-6) of
// that group, then |w| averaged over all rows (AutoAWQ's w_mean).
std::vector<float> weight_mean(std::span<const LinearRef> linears, int64_t n_in, int64_t group_size);

// Scales of one grid point: s = x̄^r / (w̄^(1-r) + 1e-4) (duo) or x̄^r, clamped to >= 1e-4, divided by
// sqrt(max s * min s); non-finite entries become 1.
std::vector<float> ratio_scales(std::span<const float> x_mean, std::span<const float> w_mean, double ratio,
                                bool duo_scaling);

// The block under inspection: runs it with the group's linears replaced by `weights` (same order and shapes as
// the LinearRefs, f32 [n_out, n_in]) and returns the mean squared error of its output against the float block's
// output on the calibration inputs. Errors abort the search.
using BlockLoss = std::function<Result<double>(std::span<const std::vector<float>> weights)>;

struct ScaleSearch {
    std::vector<float> scales;  // [n_in] of the best ratio
    double best_ratio = -1.0;   // i / n_grid
    int best_index = -1;        // i
    std::vector<double> losses; // [n_grid] loss of each ratio
};

// _search_best_scale: for each ratio, W_j <- Q(W_j * s) / s for every linear of the group, loss = block(W);
// keeps the first minimum (strict <). kBadInput when x̄ has the wrong size or every loss is non-finite.
Result<ScaleSearch> search_best_scale(std::span<const LinearRef> linears, int64_t n_in, std::span<const float> x_mean,
                                      const BlockLoss& block, const AwqOptions& options);

// _compute_best_clip on w [n_out, n_in] (already scaled) with inputs x [n_tokens, n_in] (already divided by the
// scales): tokens x[0], x[step], ... with step = max(1, n_tokens / n_sample_token); per (row, group) the max_val
// among max|w| * (1 - i/n_grid), i < max_shrink * n_grid, whose pseudo-quantized clamp(w, -m, m) gives the
// smallest mean over tokens of (x_g · (q - w)_g)². Returns max_val [n_out, n_groups]. Cost: n_grid * max_shrink
// GEMMs of [tokens, g] x [g, n_out] per group.
Result<std::vector<float>> search_best_clip(const float* w, int64_t n_out, int64_t n_in, const float* x,
                                            int64_t n_tokens, const AwqOptions& options);

// apply_clip: w <- clamp(w, -max_val, max_val) per (row, group).
void apply_clip(float* w, int64_t n_out, int64_t n_in, int64_t group_size, std::span<const float> max_val);

// Mean of (a - b)² over n values (f64).
double mean_squared_error(const float* a, const float* b, int64_t n);

} // namespace lowbit::quantize::awq
