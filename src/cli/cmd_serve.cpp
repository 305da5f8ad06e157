// SPDX-License-Identifier: MIT
// `lowbit serve -m MODEL [--host H] [--port P] [-np N] [-c CTX] [-t N] [--api-key KEY] [--chat-template NAME|FILE]
// [--max-tokens-cap N] [--timeout S] [--device cpu|cuda|auto]`: an OpenAI-compatible HTTP server with continuous
// batching (server/server.h). Binds loopback by default, prints the URL when the model is loaded, stops on
// SIGINT/SIGTERM with exit 0.
#include "cli/commands.h"
#include "core/thread_pool.h"
#include "server/server.h"

namespace lowbit::cli {
namespace {

struct ServeArgs {
    server::ServerOptions o;
    std::string cache_type;
    DeviceArgs device;
};

Status run_serve(ServeArgs a) {
    LOWBIT_ASSIGN_OR_RETURN(a.o.cache_type, cache_type_of(a.cache_type));
    LOWBIT_ASSIGN_OR_RETURN(a.o.device, device_of(a.device));
    if (a.o.n_ctx < 0) return make_error(ErrorCode::kUsage, "-c/--ctx-size must be >= 0 (0 = the model's, up to 4096)");
    ThreadPool::set_default_threads(a.o.n_threads);
    return server::serve(a.o);
}

} // namespace

CommandAction setup_serve(CLI::App& sub) {
    auto a = std::make_shared<ServeArgs>();
    server::ServerOptions& o = a->o;
    sub.add_option("-m,--model", o.model, "Hugging Face model folder or .gguf file")->required();
    sub.add_option("--host", o.host, "Address to listen on (default loopback)")->capture_default_str();
    sub.add_option("--port", o.port, "Port (0: any free port; the printed URL names it)")->capture_default_str();
    sub.add_option("--parallel", o.n_slots,
                   "Slots (-np N, as llama-server): requests decoded together (continuous batching)")
        ->capture_default_str();
    sub.add_option("-c,--ctx-size", o.n_ctx, "Context per slot (0: the model's maximum positions, capped at 4096)")
        ->capture_default_str();
    sub.add_option("-b,--batch-size", o.n_step, "Tokens per forward step (generating slots + prompt chunks)")
        ->capture_default_str();
    sub.add_option("--max-queue", o.max_queue, "Requests that may wait for a slot; beyond it: 503 + Retry-After")
        ->capture_default_str();
    add_threads_flag(sub, o.n_threads);
    add_cache_type_flag(sub, a->cache_type);
    add_device_flag(sub, a->device);
    sub.add_option("--api-key", o.api_key, "Require 'Authorization: Bearer KEY' (all routes but / and /health)");
    sub.add_option("--chat-template", o.chat_template,
                   "Chat template: a built-in (chatml, llama2, llama3, mistral, zephyr, gemma, phi3) or a file with a "
                   "Jinja template of one of those families (default: the model's own)");
    sub.add_option("--alias", o.alias, "Model id in the API (default: the model path's last component)");
    sub.add_option("--max-tokens-cap", o.max_tokens_cap,
                   "Largest max_tokens a request gets; larger requests are lowered to it (0: the slot's context)")
        ->capture_default_str();
    sub.add_option("--timeout", o.timeout_s, "Read/write timeout of a connection, seconds")->capture_default_str();
    return [a] { return run_serve(*a); };
}

} // namespace lowbit::cli
