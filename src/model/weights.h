// SPDX-License-Identifier: MIT
// Weight binding: from a TensorStore (mmap) + ModelConfig to the views the forward pass multiplies by.
// Matrices stay in the file's dtype (f32/f16/bf16/GGUF blocks) as views into the mapping — no copies; the
// kernels dequantize. Small vectors (norm weights, biases, rope factors) are converted to owned f32.
// Errors: kBadInput naming the tensor (missing, wrong shape/rank), kUnsupported (dtype with no kernel).
#pragma once

#include "core/error.h"
#include "format/hf/config.h"
#include "format/tensor_store.h"
#include "kernel/kernel.h"
#include "model/arch/arch.h"

#include <memory>
#include <vector>

namespace lowbit::model {

// LLM.int8 weights (model/quantized/): an I8 matrix "<P>.weight" binds with its row scales "<P>.SCB" (f32
// [n_rows]) and the outlier threshold of the f32 [1] tensor kInt8ThresholdTensor when the store has one, else
// bitsandbytes' default 6.0. The matmul then runs the outlier decomposition (kernel.h, WeightView::row_scale).
inline constexpr const char* kInt8ScaleSuffix = "SCB";
inline constexpr const char* kInt8ThresholdTensor = "lowbit.llm_int8_threshold";
inline constexpr float kDefaultInt8Threshold = 6.0f;
// A repacked weight "<P>.weight" whose stored columns are a permutation of the input's (GPTQ act-order, sorted by
// group) binds with "<P>.lowbit_col_perm" (I32 [n_cols], a permutation of [0, n_cols)) as WeightView::col_perm.
inline constexpr const char* kColPermSuffix = "lowbit_col_perm";

// The config with derived fields filled (head_dim, n_kv_heads) and checked for consistency.
// Errors: kBadInput naming the field (zero sizes, heads not dividing, odd head_dim).
Result<format::ModelConfig> normalize_config(const format::ModelConfig& config);

struct LayerWeights {
    std::vector<float> attn_norm;      // [hidden], f32
    kernel::WeightView wq;             // [n_heads * head_dim, hidden]
    kernel::WeightView wk, wv;         // [n_kv_heads * head_dim, hidden]
    kernel::WeightView wo;             // [hidden, n_heads * head_dim]
    std::vector<float> bq, bk, bv, bo; // [rows of wq/wk/wv/wo] f32, or empty when absent
    std::vector<float> ffn_norm;       // [hidden], f32
    kernel::WeightView w_gate, w_up;   // [n_ff, hidden]
    kernel::WeightView w_down;         // [hidden, n_ff]
};

struct ModelWeights {
    kernel::WeightView token_embd;  // [n_vocab, hidden]
    std::vector<float> output_norm; // [hidden], f32
    kernel::WeightView output;      // [n_vocab, hidden]; the token_embd view when embeddings are tied
    bool tied = false;
    std::vector<float> rope_freqs; // [head_dim / 2] GGUF frequency divisors, or empty
    std::vector<LayerWeights> layers;
};

// Binds every tensor of `arch` in `source` naming. `config` must be normalized. The views point into `store`,
// which must outlive the result. Output: tied when config.tie_word_embeddings, or (GGUF) when output.weight is
// absent, as llama.cpp does. Biases: required when arch.quirks.qkv_bias or config.attention_bias, else bound
// when present.
Result<ModelWeights> bind_weights(const format::TensorStore& store, const format::ModelConfig& config,
                                  const ArchDesc& arch, SourceFormat source);

// Diagnosis of non-finite logits (issue #15): the first NaN/Inf among the bound weights, in forward order
// (embeddings, then each layer, then the head), as "tensor 'NAME' holds nan at row R, column C" with the file's
// tensor name; "" when every weight it can decode is finite. Matrices are decoded row by row through the scheme
// table (types without a row, e.g. the packed HF 4-bit layouts, are skipped), LLM.int8 row scales are checked.
// Reads every weight once: for error paths only.
std::string find_non_finite_weight(const ModelWeights& weights, const ArchDesc& arch, SourceFormat source);

} // namespace lowbit::model
