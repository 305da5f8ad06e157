// SPDX-License-Identifier: MIT
// Built-in chat templates, detected and rendered as llama.cpp's llama-chat.cpp does.
#include "server/chat_template.h"

#include "core/file.h"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>

namespace lowbit::server {
namespace {

struct Row {
    ChatTemplate t;
    const char* name;
};
constexpr Row kRows[] = {{ChatTemplate::kChatMl, "chatml"}, {ChatTemplate::kLlama2, "llama2"},
                         {ChatTemplate::kLlama3, "llama3"}, {ChatTemplate::kMistral, "mistral"},
                         {ChatTemplate::kZephyr, "zephyr"}, {ChatTemplate::kGemma, "gemma"},
                         {ChatTemplate::kPhi3, "phi3"}};

bool has(std::string_view s, std::string_view needle) {
    return s.find(needle) != std::string_view::npos;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return out;
}

} // namespace

const char* chat_template_name(ChatTemplate t) {
    for (const Row& r : kRows)
        if (r.t == t) return r.name;
    return "?";
}

std::string chat_template_names() {
    std::string out;
    for (const Row& r : kRows) out += (out.empty() ? "" : ", ") + std::string(r.name);
    return out;
}

std::optional<ChatTemplate> chat_template_by_name(std::string_view name) {
    const std::string n = lower(name);
    for (const Row& r : kRows)
        if (n == r.name) return r.t;
    if (n == "qwen2" || n == "qwen") return ChatTemplate::kChatMl;
    if (n == "llama-3") return ChatTemplate::kLlama3;
    if (n == "llama-2") return ChatTemplate::kLlama2;
    if (n == "phi-3") return ChatTemplate::kPhi3;
    return std::nullopt;
}

std::optional<ChatTemplate> detect_chat_template(std::string_view j) {
    // Order as llm_chat_detect_template: the more specific markers first.
    if (has(j, "<|im_start|>")) return ChatTemplate::kChatMl;
    if (has(j, "<|start_header_id|>") && has(j, "<|end_header_id|>")) return ChatTemplate::kLlama3;
    if (has(j, "[INST]")) return has(j, "<<SYS>>") ? ChatTemplate::kLlama2 : ChatTemplate::kMistral;
    if (has(j, "<|assistant|>") && has(j, "<|end|>")) return ChatTemplate::kPhi3;
    if (has(j, "<|user|>")) return ChatTemplate::kZephyr;
    if (has(j, "<start_of_turn>")) return ChatTemplate::kGemma;
    return std::nullopt;
}

Result<ChatTemplate> resolve_chat_template(const std::string& flag, const std::string& model_template) {
    if (!flag.empty()) {
        if (auto t = chat_template_by_name(flag)) return *t;
        auto text = read_file_to_string(flag);
        if (!text.ok())
            return make_error(ErrorCode::kUsage,
                              fmt::format("--chat-template '{}' is neither a built-in ({}) nor a readable file", flag,
                                          chat_template_names()));
        if (auto t = detect_chat_template(*text)) return *t;
        return make_error(ErrorCode::kUsage,
                          fmt::format("--chat-template {}: the template is not one of the recognised families ({}); "
                                      "pass one of those names instead",
                                      flag, chat_template_names()));
    }
    if (model_template.empty())
        return make_error(ErrorCode::kUsage,
                          fmt::format("the model has no chat template (no tokenizer.chat_template in the GGUF, no "
                                      "chat_template in tokenizer_config.json); pass --chat-template NAME|FILE ({})",
                                      chat_template_names()));
    if (auto t = detect_chat_template(model_template)) return *t;
    return make_error(ErrorCode::kUsage,
                      fmt::format("the model's chat template is not one of the recognised families ({}); pass "
                                  "--chat-template NAME|FILE",
                                  chat_template_names()));
}

std::string render_chat(ChatTemplate t, const std::vector<ChatMessage>& messages) {
    std::string s;
    switch (t) {
    case ChatTemplate::kChatMl:
        for (const ChatMessage& m : messages) s += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
        s += "<|im_start|>assistant\n";
        break;
    case ChatTemplate::kLlama3:
        for (const ChatMessage& m : messages)
            s += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
        s += "<|start_header_id|>assistant<|end_header_id|>\n\n";
        break;
    case ChatTemplate::kLlama2: { // llama.cpp's llama2-sys-bos: [INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST]A</s><s>[INST]
                                  // ..
        bool in_turn = true;
        s += "[INST] ";
        for (const ChatMessage& m : messages) {
            if (!in_turn) s += "<s>[INST] ", in_turn = true;
            if (m.role == "system")
                s += "<<SYS>>\n" + m.content + "\n<</SYS>>\n\n";
            else if (m.role == "user")
                s += m.content + " [/INST]";
            else
                s += m.content + "</s>", in_turn = false;
        }
        break;
    }
    case ChatTemplate::kMistral: { // llama.cpp's mistral-v3: [INST] S\n\nU[/INST] A</s>
        bool in_turn = false;
        for (const ChatMessage& m : messages) {
            if (!in_turn) s += "[INST] ", in_turn = true;
            if (m.role == "system")
                s += m.content + "\n\n";
            else if (m.role == "user")
                s += m.content + "[/INST]";
            else
                s += " " + m.content + "</s>", in_turn = false;
        }
        break;
    }
    case ChatTemplate::kZephyr:
        for (const ChatMessage& m : messages) s += "<|" + m.role + "|>\n" + m.content + "<|endoftext|>\n";
        s += "<|assistant|>\n";
        break;
    case ChatTemplate::kGemma: { // no system role: it is prepended to the first user turn
        std::string system;
        for (const ChatMessage& m : messages) {
            if (m.role == "system") {
                system += m.content + "\n\n";
                continue;
            }
            const std::string role = m.role == "assistant" ? "model" : m.role;
            s += "<start_of_turn>" + role + "\n" + (role == "user" ? system : std::string()) + m.content +
                 "<end_of_turn>\n";
            if (role == "user") system.clear();
        }
        s += "<start_of_turn>model\n";
        break;
    }
    case ChatTemplate::kPhi3:
        for (const ChatMessage& m : messages) s += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
        s += "<|assistant|>\n";
        break;
    }
    return s;
}

std::vector<std::string> chat_template_stops(ChatTemplate t) {
    switch (t) {
    case ChatTemplate::kChatMl:
        return {"<|im_end|>"};
    case ChatTemplate::kLlama3:
        return {"<|eot_id|>"};
    case ChatTemplate::kZephyr:
        return {"<|endoftext|>"};
    case ChatTemplate::kGemma:
        return {"<end_of_turn>"};
    case ChatTemplate::kPhi3:
        return {"<|end|>"};
    case ChatTemplate::kLlama2:
    case ChatTemplate::kMistral:
        return {};
    }
    return {};
}

} // namespace lowbit::server
