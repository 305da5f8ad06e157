// SPDX-License-Identifier: MIT
// ArchDesc: a Llama-family architecture as data (exllamav2's architecture.py, gemma.cpp's configs): its tensor
// names in Hugging Face and GGUF files, its hparam keys and its quirk flags relative to Llama. The forward pass
// reads only these flags; adding an architecture is a new arch/<name>.cpp plus one row in arch_list.cpp.
#pragma once

#include "kernel/kernel.h"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace lowbit::model {

// Where the weights came from: decides the RoPE convention (GGUF llama rows are permuted for interleaved RoPE).
enum class SourceFormat : uint8_t { kHf, kGguf };
const char* source_format_name(SourceFormat f);

// Every tensor the forward pass binds. Per-layer roles have "{}" in their name pattern (the layer index).
enum class TensorRole : uint8_t {
    kTokenEmbd,
    kOutputNorm,
    kOutput,
    kRopeFreqs,
    kAttnNorm,
    kAttnQ,
    kAttnK,
    kAttnV,
    kAttnOut,
    kAttnQBias,
    kAttnKBias,
    kAttnVBias,
    kAttnOutBias,
    kFfnNorm,
    kFfnGate,
    kFfnUp,
    kFfnDown,
    kCount
};
inline constexpr size_t kNumRoles = static_cast<size_t>(TensorRole::kCount);
using NamePatterns = std::array<std::string_view, kNumRoles>; // "" = this format never has the tensor

// What the hparams are called: config.json keys (HF) and GGUF key suffixes after "<arch>.".
struct HparamKeys {
    std::string_view n_vocab, n_embd, n_ff, n_layer, n_head, n_head_kv, head_dim, n_ctx, norm_eps, rope_theta;
};

struct ArchQuirks {
    bool qkv_bias = false;        // q/k/v projections carry biases (Qwen2); else biases are optional
    bool tied_embeddings = false; // default when the config does not say
    kernel::RopeStyle rope_hf = kernel::RopeStyle::kNeox;   // HF checkpoints: rotate-half
    kernel::RopeStyle rope_gguf = kernel::RopeStyle::kNorm; // GGUF: per llama.cpp's LLM_ARCH rope type
    bool gguf_qk_permuted = false;    // convert_hf_to_gguf.py permutes Q/K rows for interleaved RoPE
    bool rope_scaling_llama3 = false; // accepts rope_scaling {"rope_type": "llama3"} / rope_freqs.weight
};

struct ArchDesc {
    std::string_view name;                            // GGUF general.architecture: "llama", "qwen2"
    std::array<std::string_view, 3> hf_architectures; // config.json "architectures" entries it serves
    // Pointers (not copies) so that rows in other files stay constant-initialized (no init-order issues).
    const NamePatterns* hf_names;
    const NamePatterns* gguf_names;
    const HparamKeys* hf_keys;
    const HparamKeys* gguf_keys;
    ArchQuirks quirks;

    const NamePatterns& names(SourceFormat f) const { return f == SourceFormat::kHf ? *hf_names : *gguf_names; }
    kernel::RopeStyle rope_style(SourceFormat f) const {
        return f == SourceFormat::kHf ? quirks.rope_hf : quirks.rope_gguf;
    }
};

// The name of `role` in `format` for layer `layer` ("" when the format has no such tensor).
std::string tensor_name(const ArchDesc& arch, SourceFormat format, TensorRole role, int64_t layer = 0);
// Human words for a role, for messages: "attention q projection".
const char* role_description(TensorRole role);

// Shared by the Llama-like rows (llama.cpp, qwen2.cpp): the names both formats use for them.
extern const NamePatterns kLlamaHfNames;
extern const NamePatterns kLlamaGgufNames;
extern const HparamKeys kLlamaHfKeys;
extern const HparamKeys kLlamaGgufKeys;

} // namespace lowbit::model
