// SPDX-License-Identifier: MIT
// Validation of generation requests (see request.h for the documented choices).
#include "server/request.h"

#include "runtime/generate/generate.h"

#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <random>

namespace lowbit::server {

using nlohmann::json;

json error_json(const ApiError& e) {
    json err = {{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
    if (!e.param.empty()) err["param"] = e.param;
    if (!e.code.empty()) err["code"] = e.code;
    return json{{"error", err}};
}

std::variant<json, ApiError> parse_json_object(std::string_view body) {
    json j;
    try {
        j = json::parse(body.begin(), body.end());
    } catch (const json::parse_error& e) {
        const std::string what = e.what();
        if (what.find("UTF-8") != std::string::npos)
            return ApiError{400, "the request body is not valid UTF-8 (" + what + ")"};
        return ApiError{400, "the request body is not valid JSON: " + what};
    }
    if (!j.is_object())
        return ApiError{400, std::string("the request body must be a JSON object, got ") + j.type_name()};
    return j;
}

namespace {

// A 400 for field `name`.
ApiError bad(const std::string& name, const std::string& message) {
    return ApiError{400, message, "invalid_request_error", name, ""};
}

ApiError wrong_type(const std::string& name, const char* expected, const json& v) {
    return bad(name, fmt::format("'{}' must be {}, got {}", name, expected, v.type_name()));
}

// Field readers: absent or null leave `out` untouched; a wrong type or range is an ApiError.
std::optional<ApiError> read_number(const json& j, const std::string& name, double lo, double hi, float& out) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_number()) return wrong_type(name, "a number", *it);
    const double v = it->get<double>();
    if (!std::isfinite(v) || v < lo || v > hi)
        return bad(name, fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, v));
    out = float(v);
    return std::nullopt;
}

std::optional<ApiError> read_int(const json& j, const std::string& name, int64_t lo, int64_t hi, int64_t& out) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_integer()) return wrong_type(name, "an integer", *it);
    if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
        return bad(name, fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, it->dump()));
    const int64_t v = it->get<int64_t>();
    if (v < lo || v > hi) return bad(name, fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, v));
    out = v;
    return std::nullopt;
}

std::optional<ApiError> read_bool(const json& j, const std::string& name, bool& out) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_boolean()) return wrong_type(name, "a boolean", *it);
    out = it->get<bool>();
    return std::nullopt;
}

// Fields whose effect lowbit does not implement: refused when set to anything but their neutral value.
std::optional<ApiError> refuse_unsupported(const json& j) {
    auto set = [&](const char* k) {
        auto it = j.find(k);
        return it != j.end() && !it->is_null() ? &*it : nullptr;
    };
    if (const json* v = set("n"); v && !(v->is_number_integer() && v->get<int64_t>() == 1))
        return bad("n", "'n' must be 1: lowbit serve returns one choice per request");
    if (const json* v = set("best_of"); v && !(v->is_number_integer() && v->get<int64_t>() == 1))
        return bad("best_of", "'best_of' must be 1: lowbit serve returns one choice per request");
    for (const char* k : {"tools", "functions"})
        if (const json* v = set(k); v && !(v->is_array() && v->empty()))
            return bad(k, fmt::format("'{}' is not supported: lowbit serve has no tool calling", k));
    for (const char* k : {"tool_choice", "function_call"})
        if (const json* v = set(k); v && !(v->is_string() && v->get<std::string>() == "none"))
            return bad(k, fmt::format("'{}' is not supported: lowbit serve has no tool calling", k));
    if (const json* v = set("logit_bias"); v && !(v->is_object() && v->empty()))
        return bad("logit_bias", "'logit_bias' is not supported");
    for (const char* k : {"presence_penalty", "frequency_penalty"})
        if (const json* v = set(k); v && !(v->is_number() && v->get<double>() == 0.0))
            return bad(k, fmt::format("'{}' is not supported (use repeat_penalty)", k));
    if (const json* v = set("response_format"); v) {
        if (!v->is_object() || v->value("type", std::string()) != "text")
            return bad("response_format", "'response_format' other than {\"type\": \"text\"} is not supported");
    }
    if (const json* v = set("echo"); v && !(v->is_boolean() && !v->get<bool>()))
        return bad("echo", "'echo' is not supported");
    if (const json* v = set("suffix"); v && !(v->is_string() && v->get<std::string>().empty()))
        return bad("suffix", "'suffix' is not supported");
    if (const json* v = set("grammar"); v) return bad("grammar", "'grammar' is not supported");
    if (const json* v = set("json_schema"); v) return bad("json_schema", "'json_schema' is not supported");
    return std::nullopt;
}

// One message's content: a string or an array of {"type": "text", "text": ...} parts.
std::optional<ApiError> read_content(const json& m, size_t i, std::string& out) {
    const std::string name = fmt::format("messages[{}].content", i);
    auto it = m.find("content");
    if (it == m.end() || it->is_null()) {
        out.clear();
        if (m.value("role", std::string()) == "assistant") return std::nullopt;
        return bad(name, fmt::format("'{}' is missing", name));
    }
    if (it->is_string()) {
        out = it->get<std::string>();
        return std::nullopt;
    }
    if (!it->is_array()) return wrong_type(name, "a string or an array of text parts", *it);
    out.clear();
    for (size_t p = 0; p < it->size(); ++p) {
        const json& part = (*it)[p];
        const std::string pname = fmt::format("{}[{}]", name, p);
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
            return bad(pname, fmt::format("'{}' must be an object with a 'type'", pname));
        if (part["type"].get<std::string>() != "text")
            return bad(pname, fmt::format("'{}' has type '{}': only text parts are supported", pname,
                                          part["type"].get<std::string>()));
        if (!part.contains("text") || !part["text"].is_string())
            return bad(pname + ".text", fmt::format("'{}.text' must be a string", pname));
        out += part["text"].get<std::string>();
    }
    return std::nullopt;
}

std::optional<ApiError> read_messages(const json& j, const ParseContext& ctx, std::string& prompt_text) {
    auto it = j.find("messages");
    if (it == j.end() || it->is_null()) return bad("messages", "'messages' is missing");
    if (!it->is_array()) return wrong_type("messages", "an array", *it);
    if (it->empty()) return bad("messages", "'messages' is empty: give at least one message");
    std::vector<ChatMessage> msgs;
    for (size_t i = 0; i < it->size(); ++i) {
        const json& m = (*it)[i];
        const std::string name = fmt::format("messages[{}]", i);
        if (!m.is_object()) return wrong_type(name, "an object", m);
        auto role = m.find("role");
        if (role == m.end() || !role->is_string())
            return bad(name + ".role", fmt::format("'{}.role' must be a string", name));
        ChatMessage msg;
        msg.role = role->get<std::string>();
        if (msg.role == "developer") msg.role = "system";
        if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
            return bad(name + ".role",
                       fmt::format("'{}.role' is '{}': expected system, user or assistant", name, msg.role));
        if (auto e = read_content(m, i, msg.content)) return e;
        msgs.push_back(std::move(msg));
    }
    prompt_text = render_chat(ctx.chat_template, msgs);
    return std::nullopt;
}

// prompt: a string, an array of one string, or an array of token ids.
std::optional<ApiError> read_prompt(const json& j, const ParseContext& ctx, std::vector<int32_t>& tokens,
                                    std::string& text, bool& is_tokens) {
    auto it = j.find("prompt");
    if (it == j.end() || it->is_null()) return bad("prompt", "'prompt' is missing");
    is_tokens = false;
    if (it->is_string()) {
        text = it->get<std::string>();
    } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
        text = (*it)[0].get<std::string>();
    } else if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) {
        is_tokens = true;
        const int64_t n_vocab = ctx.tok->n_vocab();
        for (size_t i = 0; i < it->size(); ++i) {
            const json& t = (*it)[i];
            if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= n_vocab)
                return bad("prompt", fmt::format("'prompt[{}]' must be a token id in [0, {})", i, n_vocab));
            tokens.push_back(int32_t(t.get<int64_t>()));
        }
    } else if (it->is_array() && it->size() > 1) {
        return bad("prompt", "'prompt' with several prompts is not supported: send one request per prompt");
    } else {
        return wrong_type("prompt", "a string or an array of token ids", *it);
    }
    return std::nullopt;
}

std::optional<ApiError> read_stop(const json& j, std::vector<std::string>& stop) {
    auto it = j.find("stop");
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (it->is_string()) {
        if (!it->get<std::string>().empty()) stop.push_back(it->get<std::string>());
        return std::nullopt;
    }
    if (!it->is_array()) return wrong_type("stop", "a string or an array of strings", *it);
    if (it->size() > 16) return bad("stop", fmt::format("'stop' has {} strings; at most 16", it->size()));
    for (const json& s : *it) {
        if (!s.is_string()) return wrong_type("stop", "a string or an array of strings", s);
        if (!s.get<std::string>().empty()) stop.push_back(s.get<std::string>());
    }
    return std::nullopt;
}

} // namespace

std::variant<GenRequest, ApiError> parse_generation(Endpoint endpoint, std::string_view body, const ParseContext& ctx) {
    auto parsed = parse_json_object(body);
    if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
    const json& j = std::get<json>(parsed);
    GenRequest r;
    r.endpoint = endpoint;

    if (auto it = j.find("model"); it != j.end() && !it->is_null() && endpoint != Endpoint::kLlamaCompletion) {
        if (!it->is_string()) return wrong_type("model", "a string", *it);
        const std::string m = it->get<std::string>();
        if (!m.empty() && m != ctx.model_id)
            return ApiError{404, fmt::format("the model '{}' does not exist: this server serves '{}'", m, ctx.model_id),
                            "invalid_request_error", "model", "model_not_found"};
    }
    if (auto e = refuse_unsupported(j)) return *e;

    // Prompt.
    std::string text;
    bool is_tokens = false;
    if (endpoint == Endpoint::kChat) {
        if (auto e = read_messages(j, ctx, text)) return *e;
    } else {
        if (auto e = read_prompt(j, ctx, r.prompt, text, is_tokens)) return *e;
    }
    if (!is_tokens) r.prompt = runtime::tokenize_prompt(*ctx.tok, text, /*add_special=*/true);
    if (r.prompt.empty())
        return bad(endpoint == Endpoint::kChat ? "messages" : "prompt", "the prompt is empty (0 tokens)");

    // Sampling (llama-server's defaults; OpenAI's names, llama-server's extras).
    runtime::SamplerOptions& s = r.sampling;
    s.temp = 0.8f, s.top_k = 40, s.top_p = 0.95f, s.min_p = 0.05f, s.repeat_penalty = 1.0f;
    if (auto e = read_number(j, "temperature", 0.0, 100.0, s.temp)) return *e;
    if (auto e = read_number(j, "top_p", 0.0, 1.0, s.top_p)) return *e;
    if (auto e = read_number(j, "min_p", 0.0, 1.0, s.min_p)) return *e;
    if (auto e = read_number(j, "repeat_penalty", 0.0, 10.0, s.repeat_penalty)) return *e;
    if (s.repeat_penalty <= 0.0f) return bad("repeat_penalty", "'repeat_penalty' must be > 0");
    int64_t top_k = s.top_k;
    if (auto e = read_int(j, "top_k", 0, 1 << 30, top_k)) return *e;
    s.top_k = int32_t(top_k);
    int64_t last_n = s.repeat_last_n;
    if (auto e = read_int(j, "repeat_last_n", -1, 1 << 30, last_n)) return *e;
    s.repeat_last_n = int32_t(last_n);
    int64_t seed = -1;
    if (auto e = read_int(j, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), seed))
        return *e;
    s.seed = j.contains("seed") && !j["seed"].is_null() && seed != -1
                 ? uint64_t(seed)
                 : (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();

    // Length. max_tokens (OpenAI), max_completion_tokens (OpenAI chat), n_predict (llama-server).
    int64_t max_tokens = -1;
    for (const char* k : {"max_tokens", "max_completion_tokens", "n_predict"}) {
        int64_t v = -1;
        if (auto e = read_int(j, k, std::string(k) == "n_predict" ? -1 : 1, std::numeric_limits<int64_t>::max(), v))
            return *e;
        if (v > 0) max_tokens = v;
    }
    const int64_t n_prompt = int64_t(r.prompt.size());
    if (n_prompt >= ctx.n_ctx)
        return bad(endpoint == Endpoint::kChat ? "messages" : "prompt",
                   fmt::format("the prompt has {} tokens but a slot's context holds {} (the prompt must leave room "
                               "for at least one generated token)",
                               n_prompt, ctx.n_ctx));
    if (max_tokens > 0) {
        const int64_t requested = max_tokens;
        max_tokens = std::min(max_tokens, ctx.max_tokens_cap); // documented: capped, not refused
        if (n_prompt + max_tokens > ctx.n_ctx)
            return bad(j.contains("max_tokens") ? "max_tokens" : "max_completion_tokens",
                       fmt::format("the prompt has {} tokens and max_tokens is {}{}: {} > the context of {} tokens per "
                                   "slot; lower max_tokens or shorten the prompt",
                                   n_prompt, requested,
                                   requested != max_tokens ? fmt::format(" (capped to {})", max_tokens) : "",
                                   n_prompt + max_tokens, ctx.n_ctx));
        r.max_tokens = max_tokens;
    } else {
        r.max_tokens = std::min(ctx.n_ctx - n_prompt, ctx.max_tokens_cap);
    }

    if (auto e = read_stop(j, r.stop)) return *e;
    if (endpoint == Endpoint::kChat)
        for (const std::string& st : chat_template_stops(ctx.chat_template)) r.stop.push_back(st);

    if (auto e = read_bool(j, "stream", r.stream)) return *e;
    if (auto it = j.find("stream_options"); it != j.end() && !it->is_null()) {
        if (!it->is_object()) return wrong_type("stream_options", "an object", *it);
        if (!r.stream) return bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
        if (auto e = read_bool(*it, "include_usage", r.include_usage)) {
            e->param = "stream_options.include_usage";
            return *e;
        }
    }

    // Logprobs: chat has logprobs (bool) + top_logprobs (0..20); completions has logprobs (int 0..5).
    if (endpoint == Endpoint::kChat) {
        bool lp = false;
        if (auto e = read_bool(j, "logprobs", lp)) return *e;
        int64_t top = -1;
        if (auto e = read_int(j, "top_logprobs", 0, 20, top)) return *e;
        if (top >= 0 && !lp) return bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
        if (lp) r.n_logprobs = int(std::max<int64_t>(top, 0));
    } else if (endpoint == Endpoint::kCompletions) {
        int64_t lp = -1;
        if (auto e = read_int(j, "logprobs", 0, 5, lp)) return *e;
        r.n_logprobs = int(lp);
    }
    return r;
}

} // namespace lowbit::server
