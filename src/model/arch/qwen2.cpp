// SPDX-License-Identifier: MIT
// Qwen2: Llama plus q/k/v biases. llama.cpp maps qwen2 to LLAMA_ROPE_TYPE_NEOX and its converter does NOT
// permute Q/K, so GGUF files keep HF's rotate-half convention.
#include "model/arch/arch_list.h"

namespace lowbit::model {

constinit const ArchDesc kQwen2Arch = {
    .name = "qwen2",
    .hf_architectures = {"Qwen2ForCausalLM", "", ""},
    .hf_names = &kLlamaHfNames,
    .gguf_names = &kLlamaGgufNames,
    .hf_keys = &kLlamaHfKeys,
    .gguf_keys = &kLlamaGgufKeys,
    .quirks =
        {
            .qkv_bias = true,
            .tied_embeddings = false,
            .rope_hf = kernel::RopeStyle::kNeox,
            .rope_gguf = kernel::RopeStyle::kNeox,
            .gguf_qk_permuted = false,
            .rope_scaling_llama3 = false,
        },
};

} // namespace lowbit::model
