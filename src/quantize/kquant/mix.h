// SPDX-License-Identifier: MIT
// llama.cpp's k-quant mixes: which ggml type each tensor of a GGUF model gets for a file type such as Q4_K_M
// (src/llama-quant.cpp: tensor_allows_quantization, llama_tensor_get_type(_impl), tensor_type_fallback,
// llama_ftype_get_default_type). Same inputs, same answers, so `lowbit quantize --type Q4_K_M` writes the
// tensor types llama-quantize writes.
// Goals: the file types lowbit can produce (F32/F16/BF16, Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, Q2_K(_S), Q3_K_S/M/L,
// Q4_K_S/M, Q5_K_S/M, Q6_K) for Llama-family names. Non-goals: IQ/TQ/MXFP4 mixes, --tensor-type regex overrides.
#pragma once

#include "core/dtype.h"
#include "core/error.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::quantize::kquant {

// llama.cpp's llama_ftype (the GGUF key general.file_type); values are the on-disk ids.
enum class FileType : int {
    kAllF32 = 0,
    kF16 = 1,
    kQ4_0 = 2,
    kQ4_1 = 3,
    kQ8_0 = 7,
    kQ5_0 = 8,
    kQ5_1 = 9,
    kQ2_K = 10,
    kQ3_K_S = 11,
    kQ3_K_M = 12,
    kQ3_K_L = 13,
    kQ4_K_S = 14,
    kQ4_K_M = 15,
    kQ5_K_S = 16,
    kQ5_K_M = 17,
    kQ6_K = 18,
    kQ2_K_S = 21,
    kBF16 = 32,
};

// "Q4_K_M", "q4_k_m", and llama-quantize's aliases "Q3_K" / "Q4_K" / "Q5_K" (= the _M mixes). nullopt if unknown.
std::optional<FileType> file_type_from_name(std::string_view name);
std::optional<FileType> file_type_from_id(int id);
std::string_view file_type_name(FileType ft); // "Q4_K_M"
// llama_ftype_get_default_type: the type most tensors get (Q4_K for Q4_K_M, F16 for F16, ...).
DType default_dtype(FileType ft);

// Model facts the rules read (GGUF <arch>.block_count, .attention.head_count(_kv), .expert_count).
struct MixHparams {
    std::string arch = "llama"; // "falcon" changes some rules; "llama" with 80 layers and GQA is the 70B case
    int n_layer = 0;
    int n_head = 0;
    int n_head_kv = 0;
    int n_expert = 0;
};

// One tensor of the source model.
struct MixTensor {
    std::string name;        // GGUF name, e.g. "blk.3.attn_v.weight"
    std::vector<int64_t> ne; // GGUF dims, ne[0] (the row / block axis) first
    DType dtype = DType::kF32;
};

struct MixOptions {
    bool has_imatrix = false;             // an importance matrix will be used (changes Q4_0/Q5_0 ffn_down, Q2_K_S)
    bool pure = false;                    // --pure: default type everywhere (fallbacks still apply)
    bool quantize_output = true;          // false = --leave-output-tensor
    std::optional<DType> output_type;     // --output-tensor-type
    std::optional<DType> token_embd_type; // --token-embedding-type
};

struct MixPlan {
    std::vector<DType> types;      // parallel to the input tensors; == the source dtype when left as is
    int n_fallback = 0;            // tensors whose row length forced a fallback type (llama.cpp warns)
    bool requires_imatrix = false; // some tensor's type needs an imatrix (Q2_K in a Q2_K_S file)
};

// Whether llama-quantize would quantize this tensor at all (2-D+ "*weight" that is not a norm, gate_inp, ...).
bool allows_quantization(const MixTensor& t, const MixOptions& opts = {});

// llama.cpp's tensor order (llama_model_loader::weight_name_comparer): non-layer tensors first, then by layer
// number ("blk.N."), then by name. llama-quantize writes its output in this order. Returns indices into `tensors`.
std::vector<size_t> llama_tensor_order(std::span<const MixTensor> tensors);

// Chooses every tensor's type. Stateful rules (attn_v / ffn_down counters) run in llama.cpp's tensor order
// (by layer, then by name), whatever the order of `tensors`. Errors: kUnsupported when a row length has no
// fallback type (e.g. ne[0] % 32 != 0 for Q8_0), kUsage when hparams are missing.
Result<MixPlan> plan_mix(std::span<const MixTensor> tensors, const MixHparams& hparams, FileType ft,
                         const MixOptions& opts = {});

} // namespace lowbit::quantize::kquant
