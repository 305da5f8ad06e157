// SPDX-License-Identifier: MIT
// GGUF block grids for the GPTQ loop, so a GPTQ-calibrated model is a GGUF file llama.cpp runs.
// At each block start the grid chooses the block's parameters from the current (error-updated) weights exactly
// as llama.cpp's quantizer does, then GPTQ rounds every column onto that fixed grid with error feedback:
//   Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (group 32): d (and min) as quantize_row_*_ref derives them; codes rounded as it
//     rounds (f32 d / inverse), clamped to the type's range because updated weights can leave the block's range.
//   Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (group 256): sub-block scales/mins and d/dmin from the scheme's weighted block
//   quantizer
//     with importance = diag(H)/2 (= mean x², the value llama.cpp's imatrix holds for these inputs); codes =
//     nearest level of the stored 6/8-bit grid, as the k-quant's final pass computes them.
// The final bytes are assembled from the chosen parameters + GPTQ's codes (never re-quantized from Ŵ).
#pragma once

#include "core/dtype.h"
#include "core/error.h"
#include "quantize/gptq/gptq.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace lowbit::quantize::gptq {

// True for the GGUF types with a GPTQ grid: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
bool has_gguf_grid(DType type);

// Codes in GptqResult::codes are the stored level of each weight: Q8_0 [-127, 127], Q2_K [0, 3], Q3_K [0, 7]
// (level + 4), Q4_0/Q4_1/Q4_K [0, 15],
// Q5_0/Q5_1/Q5_K [0, 31], Q6_K [0, 63]. Clones share the block parameters chosen so far (one object per matrix).
class GgufGrid final : public ColumnQuantizer {
  public:
    // W is [n_rows, n_cols]. Errors: kUnsupported for a type without a grid, kUsage when n_cols is not a
    // multiple of the type's block.
    static Result<std::unique_ptr<GgufGrid>> create(DType type, int64_t n_rows, int64_t n_cols);

    void set_hessian_diag(const std::vector<double>& diag) override;
    int64_t required_group_size() const override;
    void find_params(const float* w, int64_t ld, int64_t n_rows, int64_t col_begin, int64_t n_cols) override;
    float quantize(int64_t row, int64_t col, float x, int32_t& code) const override;
    void params(std::vector<float>& scale, std::vector<int32_t>& zero) const override;
    std::unique_ptr<ColumnQuantizer> clone() const override { return std::make_unique<GgufGrid>(*this); }

    DType type() const;
    // k-quant importance [n_cols]: diag(H)/2 (all ones until set_hessian_diag).
    const std::vector<float>& importance() const;
    // The tensor's GGUF bytes [n_rows * row bytes], rows in W's order: every block's parameters as chosen by
    // find_params, its codes from r.codes (r from gptq_quantize_with on this grid). kInternal if a block was never
    // visited or the shapes differ.
    Result<std::vector<uint8_t>> pack(const GptqResult& r) const;

    struct Shared; // the block templates (parameters) of the whole matrix, shared by the clones
    GgufGrid(std::shared_ptr<Shared> shared, int64_t n_rows);

  private:
    std::shared_ptr<Shared> shared_;
    int64_t block_ = -1;        // block index (within a row) of the current group
    std::vector<float> p_;      // [n_rows, kParams] rounding parameters of the current group
    std::vector<uint8_t> keep_; // k-quants: [n_rows, 256] block quantizer's own codes (used where a scale is 0)
};

} // namespace lowbit::quantize::gptq
