// SPDX-License-Identifier: MIT
// Llama (and Mistral, which is Llama under another HF class name; sliding-window attention is not used by
// the checkpoints we run within their window). GGUF: llama.cpp's converter permutes Q/K rows so that the
// interleaved (NORM) RoPE reproduces HF's rotate-half; Llama 3.x adds "llama3" rope scaling, which GGUF files
// carry as rope_freqs.weight.
#include "model/arch/arch_list.h"

namespace lowbit::model {

constinit const ArchDesc kLlamaArch = {
    .name = "llama",
    .hf_architectures = {"LlamaForCausalLM", "MistralForCausalLM", ""},
    .hf_names = &kLlamaHfNames,
    .gguf_names = &kLlamaGgufNames,
    .hf_keys = &kLlamaHfKeys,
    .gguf_keys = &kLlamaGgufKeys,
    .quirks =
        {
            .qkv_bias = false,
            .tied_embeddings = false,
            .rope_hf = kernel::RopeStyle::kNeox,
            .rope_gguf = kernel::RopeStyle::kNorm,
            .gguf_qk_permuted = true,
            .rope_scaling_llama3 = true,
        },
};

} // namespace lowbit::model
