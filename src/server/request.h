// SPDX-License-Identifier: MIT
// Request bodies of the generation endpoints (OpenAI's /v1/chat/completions and /v1/completions, llama-server's
// /completion) -> a GenRequest the scheduler runs, or an ApiError with the HTTP status and OpenAI's error shape.
// Goals: every field OpenAI's clients send is either honoured or, when ignoring it would change the result
// (n > 1, tools, logit_bias, penalties, ...), refused with a 400 naming it; wrong types, ranges and a prompt +
// max_tokens beyond the slot's context are 400s that give the numbers.
// Documented: max_tokens above --max-tokens-cap is capped to it (finish_reason "length"); absent max_tokens =
// the rest of the slot's context (capped likewise). Sampling defaults are llama-server's (temp 0.8, top_k 40,
// top_p 0.95, min_p 0.05); an absent seed draws a random one.
#pragma once

#include "runtime/sampler/sampler.h"
#include "runtime/tokenizer/tokenizer.h"
#include "server/chat_template.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace lowbit::server {

struct ApiError {
    ApiError() = default;
    ApiError(int s, std::string m, std::string t = "invalid_request_error", std::string p = "", std::string c = "")
        : status(s), message(std::move(m)), type(std::move(t)), param(std::move(p)), code(std::move(c)) {}
    int status = 400;
    std::string message;
    std::string type = "invalid_request_error";
    std::string param; // the offending field, "" when none
    std::string code;  // e.g. "model_not_found", "" when none
};
// {"error": {"message", "type", "param", "code"}} (null param/code when empty).
nlohmann::json error_json(const ApiError& e);

enum class Endpoint { kChat, kCompletions, kLlamaCompletion };

struct GenRequest {
    Endpoint endpoint = Endpoint::kChat;
    std::vector<int32_t> prompt; // tokens (BOS included when the vocabulary adds one)
    int64_t max_tokens = 0;      // > 0, prompt + max_tokens <= n_ctx
    runtime::SamplerOptions sampling;
    std::vector<std::string> stop;
    bool stream = false;
    bool include_usage = false;
    int n_logprobs = -1; // -1: no logprobs; k >= 0: the chosen token's logprob and the top k alternatives
};

struct ParseContext {
    const tokenizer::Tokenizer* tok = nullptr;
    ChatTemplate chat_template = ChatTemplate::kChatMl;
    int64_t n_ctx = 0;          // positions per slot
    int64_t max_tokens_cap = 0; // > 0
    std::string model_id;       // the name /v1/models lists
};

std::variant<GenRequest, ApiError> parse_generation(Endpoint endpoint, std::string_view body, const ParseContext& ctx);

// The body as a JSON object, or a 400 ApiError (malformed JSON, invalid UTF-8, not an object).
std::variant<nlohmann::json, ApiError> parse_json_object(std::string_view body);

} // namespace lowbit::server
