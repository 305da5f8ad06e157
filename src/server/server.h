// SPDX-License-Identifier: MIT
// `lowbit serve`: an OpenAI-compatible HTTP server (cpp-httplib) over one Session with continuous batching.
// Endpoints: POST /v1/chat/completions, /v1/completions (and without /v1), llama-server's /completion,
// /tokenize, /detokenize; GET /v1/models, /health (503 while loading), /metrics (Prometheus text), / (chat page).
// Errors are OpenAI's {"error": {message, type, param, code}} with the HTTP status (see request.h).
// The server talks to runtime::Session only (never to kernels).
#pragma once

#include "core/dtype.h"
#include "core/error.h"
#include "runtime/session.h"

#include <cstdint>
#include <string>

namespace lowbit::server {

struct ServerOptions {
    std::string model;
    std::string host = "127.0.0.1";
    int port = 8080; // 0: an ephemeral port (the printed URL names it)
    int64_t n_slots = 4;
    int64_t n_ctx = 0; // positions per slot (0: the session's default)
    int64_t n_step = 256;
    int64_t max_queue = 64;
    int64_t max_tokens_cap = 0; // 0: the slot's context
    int n_threads = 0;
    DType cache_type = DType::kF16;
    runtime::Device device = runtime::Device::kCpu;
    std::string api_key;       // empty: no authentication
    std::string chat_template; // --chat-template NAME|FILE, empty: the model's
    std::string alias;         // model id in the API (empty: the model path's last component)
    int timeout_s = 600;       // read/write timeout of a connection
    size_t max_body_bytes = size_t(8) << 20;
};

// Runs until SIGINT/SIGTERM (then in-flight requests get an error and it returns ok). Errors: a chat template
// cannot be resolved (kUsage naming --chat-template), the model fails to load, the address cannot be bound.
Status serve(const ServerOptions& options);

// The chat page served at GET / (one self-contained HTML document).
const char* chat_page_html();

} // namespace lowbit::server
