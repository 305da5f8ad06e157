// SPDX-License-Identifier: MIT
// GPTQ (Frantar et al. 2022): quantize a weight matrix column by column, feeding each column's rounding
// error back into the not-yet-quantized columns through the inverse Hessian of the layer's inputs.
// Faithful to IST-DASLab gptq.py `fasterquant`: dead columns, damping, Cholesky-based inverse, lazy
// batch updates in blocks, act-order (desc_act) with g_idx, static groups, sym/asym.
// The grid is pluggable (ColumnQuantizer): the integer grid here; GGUF grids plug in the same loop.
// Cost: O(K^3) for the inverse (LAPACK) + O(N*K^2) for the updates (BLAS). Memory: H [K,K] f64 + W [N,K] f32.
#pragma once

#include "core/error.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace lowbit::quantize::gptq {

// Chooses a group's grid parameters from weights and rounds columns onto it.
class ColumnQuantizer {
  public:
    virtual ~ColumnQuantizer() = default;
    // Called once per matrix, before any find_params, with diag(H) [n_cols] in the original column order (dead
    // columns set to 1, no damping). Grids whose parameter search weighs columns by importance keep it.
    virtual void set_hessian_diag(const std::vector<double>& /*diag*/) {}
    // The group size this grid needs (GGUF blocks: 32 or 256); 0 = any (GptqOptions::group_size decides).
    virtual int64_t required_group_size() const { return 0; }
    // Called at each group start with the columns [col_begin, col_begin + n_cols) of W ([n_rows, ld], row-major).
    virtual void find_params(const float* w, int64_t ld, int64_t n_rows, int64_t col_begin, int64_t n_cols) = 0;
    // Rounds value x of row `row`, original column `col` (the position inside a block picks a GGUF sub-block's
    // scale), with the current parameters; returns the dequantized value.
    virtual float quantize(int64_t row, int64_t col, float x, int32_t& code) const = 0;
    // Parameters of the current group, per row: scale [n_rows], zero [n_rows] (integer zero point).
    virtual void params(std::vector<float>& scale, std::vector<int32_t>& zero) const = 0;
    virtual std::unique_ptr<ColumnQuantizer> clone() const = 0;
};

// gptq.py's Quantizer(perchannel=True): range includes 0; sym → zero = (maxq+1)/2; all-zero rows → [-1, 1].
class IntGridQuantizer final : public ColumnQuantizer {
  public:
    IntGridQuantizer(int bits, bool sym) : maxq_((1 << bits) - 1), sym_(sym) {}
    void find_params(const float* w, int64_t ld, int64_t n_rows, int64_t col_begin, int64_t n_cols) override;
    float quantize(int64_t row, int64_t col, float x, int32_t& code) const override;
    void params(std::vector<float>& scale, std::vector<int32_t>& zero) const override;
    std::unique_ptr<ColumnQuantizer> clone() const override { return std::make_unique<IntGridQuantizer>(*this); }

  private:
    int maxq_;
    bool sym_;
    std::vector<float> scale_;
    std::vector<float> zero_; // integral values stored as float, as gptq.py does
};

struct GptqOptions {
    int bits = 4;             // 2, 3, 4, 8
    int64_t group_size = 128; // -1 = one group per row (per-channel)
    bool sym = true;
    bool desc_act = false;      // act-order: process columns by decreasing Hessian diagonal
    bool static_groups = false; // with desc_act: group params fixed from the original W before any update
    double damp_percent = 0.01; // λ = damp_percent * mean(diag H)
    int64_t block_size = 128;   // lazy-batch block
};

struct GptqResult {
    int64_t n_rows = 0, n_cols = 0, n_groups = 0;
    std::vector<int32_t> codes; // [n_rows, n_cols], original column order
    std::vector<float> scales;  // [n_rows, n_groups]
    std::vector<int32_t> zeros; // [n_rows, n_groups]
    std::vector<int32_t> g_idx; // [n_cols] group index of each column (original order)
    std::vector<int32_t> perm;  // [n_cols] processing order (identity without desc_act)
    std::vector<float> dequant; // [n_rows, n_cols] Ŵ
    double loss = 0.0;          // Σ (w-q)^2 / d^2 / 2, as gptq.py reports
    double damp_used = 0.0;     // damping fraction that made H positive definite
};

// Validates options against the shape (kUsage with a message for bad bits/group sizes).
Status validate(const GptqOptions& opt, int64_t n_cols);

// W: [n_rows, n_cols] f32 row-major. H: [n_cols, n_cols] symmetric (2 XᵀX / n_samples), taken by value
// (modified in place). If the Cholesky factorization fails, damping grows ×10 up to 100 % and a warning says so.
Result<GptqResult> gptq_quantize(const float* w, int64_t n_rows, int64_t n_cols, std::vector<double> h,
                                 const GptqOptions& opt);
// The same loop with any grid: `grid` is cloned per group for static groups.
Result<GptqResult> gptq_quantize_with(const float* w, int64_t n_rows, int64_t n_cols, std::vector<double> h,
                                      const GptqOptions& opt, const ColumnQuantizer& grid);

// Accumulates H = 2/n Σ x xᵀ over input rows x [n_tokens, n_cols] (f64 accumulation, BLAS dsyrk).
class HessianAccumulator {
  public:
    explicit HessianAccumulator(int64_t n_cols) : n_cols_(n_cols), h_(size_t(n_cols * n_cols), 0.0) {}
    void add(const float* x, int64_t n_tokens);
    // H scaled by 2 / n_samples (full symmetric matrix).
    std::vector<double> finish() const;
    int64_t n_samples() const { return n_samples_; }

  private:
    int64_t n_cols_;
    int64_t n_samples_ = 0;
    std::vector<double> h_; // upper triangle accumulated, [n_cols, n_cols]
};

} // namespace lowbit::quantize::gptq
