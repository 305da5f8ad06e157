// SPDX-License-Identifier: MIT
// Chat templates: a conversation (role, content) -> the prompt text a chat model was trained on.
// Goals: the families llama.cpp recognises by substrings of the model's own Jinja template
// (llm_chat_detect_template) rendered as llama.cpp's built-ins do: ChatML (Qwen2), Llama-2, Llama-3, Mistral,
// Zephyr, Gemma, Phi-3. Non-goals: a Jinja interpreter, tool calls, images.
#pragma once

#include "core/error.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::server {

enum class ChatTemplate { kChatMl, kLlama2, kLlama3, kMistral, kZephyr, kGemma, kPhi3 };

struct ChatMessage {
    std::string role; // "system" | "user" | "assistant" | "tool"
    std::string content;
};

const char* chat_template_name(ChatTemplate t); // "chatml", "llama2", ...
// The names accepted by --chat-template, comma-separated (for messages).
std::string chat_template_names();
// A built-in by name (case-insensitive; "qwen2" = chatml, "llama-3" = llama3, "phi-3" = phi3 also accepted).
std::optional<ChatTemplate> chat_template_by_name(std::string_view name);
// The family of a Jinja template text, by llama.cpp's substring rules; nullopt when none matches.
std::optional<ChatTemplate> detect_chat_template(std::string_view jinja);

// Resolves the server's template: `flag` (--chat-template NAME|FILE, may be empty) wins over `model_template`
// (tokenizer.chat_template / tokenizer_config.json chat_template, may be empty). kUsage naming --chat-template
// when the flag is neither a name nor a readable file of a known family, or when there is no template at all.
Result<ChatTemplate> resolve_chat_template(const std::string& flag, const std::string& model_template);

// The prompt text for `messages` followed by the assistant turn's opening (add_generation_prompt). BOS is not
// written: the tokenizer adds it (as llama.cpp's llama_chat_apply_template + tokenize(add_special)).
std::string render_chat(ChatTemplate t, const std::vector<ChatMessage>& messages);
// Text that ends an assistant turn in this family ("<|im_end|>", "<|eot_id|>", ...): a stop string, so that a model
// whose vocabulary lacks the control token still stops there. Empty when the turn ends with EOS only.
std::vector<std::string> chat_template_stops(ChatTemplate t);

} // namespace lowbit::server
