// SPDX-License-Identifier: MIT
#include "server/chat_template.h"

#include <cstdio>
#include <gtest/gtest.h>
#include <unistd.h>

namespace lowbit::server {
namespace {

const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Why?"}};

// Template texts (abridged from the models' tokenizer_config.json) -> the family llama.cpp detects.
TEST(ChatTemplate, DetectsFamiliesBySubstrings) {
    EXPECT_EQ(detect_chat_template("{{ '<|im_start|>' + message['role'] }}"), ChatTemplate::kChatMl);
    EXPECT_EQ(detect_chat_template("{{ '<|start_header_id|>' + role + '<|end_header_id|>\n\n' }}"),
              ChatTemplate::kLlama3);
    EXPECT_EQ(detect_chat_template("{{ bos_token + '[INST] ' + '<<SYS>>\\n' }}"), ChatTemplate::kLlama2);
    EXPECT_EQ(detect_chat_template("{{ '[INST] ' + message['content'] + ' [/INST]' }}"), ChatTemplate::kMistral);
    EXPECT_EQ(detect_chat_template("{{'<|user|>\n' + content + '<|end|>\n<|assistant|>\n'}}"), ChatTemplate::kPhi3);
    EXPECT_EQ(detect_chat_template("{{ '<|user|>\n' + message['content'] + eos_token }}"), ChatTemplate::kZephyr);
    EXPECT_EQ(detect_chat_template("{{ '<start_of_turn>' + role + '\n' }}"), ChatTemplate::kGemma);
    EXPECT_FALSE(detect_chat_template("{{ messages }}").has_value());
}

TEST(ChatTemplate, RendersAsLlamaCppBuiltins) {
    EXPECT_EQ(render_chat(ChatTemplate::kChatMl, kConversation),
              "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello"
              "<|im_end|>\n<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_EQ(
        render_chat(ChatTemplate::kLlama3, kConversation),
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>"
        "\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>user"
        "<|end_header_id|>\n\nWhy?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    EXPECT_EQ(render_chat(ChatTemplate::kLlama2, kConversation),
              "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]Hello</s><s>[INST] Why? [/INST]");
    EXPECT_EQ(render_chat(ChatTemplate::kMistral, kConversation),
              "[INST] Be brief.\n\nHi[/INST] Hello</s>[INST] Why?[/INST]");
    EXPECT_EQ(render_chat(ChatTemplate::kZephyr, kConversation),
              "<|system|>\nBe brief.<|endoftext|>\n<|user|>\nHi<|endoftext|>\n<|assistant|>\nHello<|endoftext|>\n"
              "<|user|>\nWhy?<|endoftext|>\n<|assistant|>\n");
    EXPECT_EQ(render_chat(ChatTemplate::kGemma, kConversation),
              "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
              "<start_of_turn>user\nWhy?<end_of_turn>\n<start_of_turn>model\n");
    EXPECT_EQ(render_chat(ChatTemplate::kPhi3, kConversation),
              "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello<|end|>\n<|user|>\nWhy?<|end|>\n"
              "<|assistant|>\n");
}

TEST(ChatTemplate, FlagOverridesAndErrorsNameTheFlag) {
    EXPECT_EQ(*resolve_chat_template("", "<|im_start|>"), ChatTemplate::kChatMl);
    EXPECT_EQ(*resolve_chat_template("gemma", "<|im_start|>"), ChatTemplate::kGemma);
    EXPECT_EQ(*resolve_chat_template("Llama-3", ""), ChatTemplate::kLlama3);
    auto none = resolve_chat_template("", "");
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().code, ErrorCode::kUsage);
    EXPECT_NE(none.error().message.find("--chat-template"), std::string::npos);
    auto unknown = resolve_chat_template("", "{{ messages }}");
    ASSERT_FALSE(unknown.ok());
    EXPECT_NE(unknown.error().message.find("--chat-template"), std::string::npos);
    auto bad = resolve_chat_template("no-such-template", "");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("--chat-template 'no-such-template'"), std::string::npos);
    // A file holding a Jinja template of a known family.
    char path[] = "/tmp/lowbit_tmpl_XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    const std::string jinja = "{% for m in messages %}{{ '<start_of_turn>' + m['role'] }}{% endfor %}";
    ASSERT_EQ(write(fd, jinja.data(), jinja.size()), ssize_t(jinja.size()));
    close(fd);
    EXPECT_EQ(*resolve_chat_template(path, ""), ChatTemplate::kGemma);
    std::remove(path);
}

} // namespace
} // namespace lowbit::server
