// SPDX-License-Identifier: MIT
// The architecture table. One row per ArchDesc (arch/<name>.cpp); Mistral is the llama row under its HF name.
#pragma once

#include "model/arch/arch.h"

#include <span>
#include <string_view>

namespace lowbit::model {

extern const ArchDesc kLlamaArch; // arch/llama.cpp: LlamaForCausalLM, MistralForCausalLM
extern const ArchDesc kQwen2Arch; // arch/qwen2.cpp: Qwen2ForCausalLM

std::span<const ArchDesc* const> all_archs();
// By GGUF/lowbit name ("llama") or by HF class name ("MistralForCausalLM"); nullptr if unknown.
const ArchDesc* find_arch(std::string_view name);

} // namespace lowbit::model
