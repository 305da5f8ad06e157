// SPDX-License-Identifier: MIT
// HTTP layer of `lowbit serve`: routes, authentication, OpenAI response shapes, SSE streaming.
#include "server/server.h"

#include "core/log.h"
#include "runtime/tokenizer/load.h"
#include "server/chat_template.h"
#include "server/request.h"
#include "server/scheduler.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fmt/format.h>
#include <httplib.h>
#include <pthread.h>
#include <random>
#include <sys/socket.h>
#include <thread>

namespace lowbit::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Content types are written with a charset so that cpp-httplib never gzips them (a compressed stream would buffer
// SSE events and the keep-alive bytes that detect a gone client).
constexpr const char* kJson = "application/json; charset=utf-8";
constexpr const char* kSse = "text/event-stream";

void send_json(httplib::Response& res, int status, const json& j) {
    res.status = status;
    res.set_content(dump(j), kJson);
}

void send_error(httplib::Response& res, const ApiError& e) {
    send_json(res, e.status, error_json(e));
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    const size_t n = std::max(a.size(), b.size());
    for (size_t i = 0; i < n; ++i) {
        const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
        const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
        diff |= static_cast<unsigned char>(x ^ y);
    }
    return diff == 0;
}

std::string random_id(const char* prefix) {
    static std::atomic<uint64_t> counter{0};
    static const uint64_t base = (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
    return fmt::format("{}{:016x}{:04x}", prefix, base, counter.fetch_add(1) & 0xffff);
}

json bytes_of(const std::string& s) {
    json b = json::array();
    for (unsigned char c : s) b.push_back(int(c));
    return b;
}

struct State {
    ServerOptions options;
    std::atomic<bool> ready{false};
    std::unique_ptr<runtime::Session> session;
    std::unique_ptr<Scheduler> scheduler;
    ParseContext ctx;
    std::string model_id;
    int64_t created = std::time(nullptr);
    Clock::time_point started = Clock::now();
    std::atomic<uint64_t> http_errors{0};
    std::atomic<int64_t> open_streams{0}; // chunked responses not yet released (shutdown waits for them)
};

json timings_json(const Finish& f) {
    return json{{"prompt_n", f.n_prompt - f.n_cached},
                {"cache_n", f.n_cached},
                {"prompt_ms", f.prompt_ms},
                {"predicted_n", f.n_generated},
                {"predicted_ms", f.generate_ms},
                {"predicted_per_second", f.generate_ms > 0 ? 1000.0 * double(f.n_generated) / f.generate_ms : 0.0}};
}

json usage_json(const Finish& f) {
    return json{{"prompt_tokens", f.n_prompt},
                {"completion_tokens", f.n_generated},
                {"total_tokens", f.n_prompt + f.n_generated},
                {"prompt_tokens_details", {{"cached_tokens", f.n_cached}}}};
}

// OpenAI chat logprobs: {"content": [{token, logprob, bytes, top_logprobs: [...]}]}.
json chat_logprobs(const std::vector<TokenLogprob>& lps, const tokenizer::Tokenizer& tok) {
    json content = json::array();
    for (const TokenLogprob& lp : lps) {
        json top = json::array();
        for (auto [id, l] : lp.top) {
            const std::string piece = tok.token_to_piece(id, true);
            top.push_back({{"token", tokenizer::sanitize_utf8(piece)}, {"logprob", l}, {"bytes", bytes_of(piece)}});
        }
        content.push_back({{"token", tokenizer::sanitize_utf8(lp.piece)},
                           {"logprob", lp.logprob},
                           {"bytes", bytes_of(lp.piece)},
                           {"top_logprobs", top}});
    }
    return json{{"content", content}};
}

// OpenAI legacy completions logprobs: {tokens, token_logprobs, top_logprobs, text_offset}.
json completion_logprobs(const std::vector<TokenLogprob>& lps, const tokenizer::Tokenizer& tok, size_t offset0) {
    json tokens = json::array(), lp_arr = json::array(), tops = json::array(), offs = json::array();
    size_t off = offset0;
    for (const TokenLogprob& lp : lps) {
        tokens.push_back(tokenizer::sanitize_utf8(lp.piece));
        lp_arr.push_back(lp.logprob);
        json top = json::object();
        for (auto [id, l] : lp.top) top[tokenizer::sanitize_utf8(tok.token_to_piece(id, true))] = l;
        tops.push_back(top);
        offs.push_back(off);
        off += lp.piece.size();
    }
    return json{{"tokens", tokens}, {"token_logprobs", lp_arr}, {"top_logprobs", tops}, {"text_offset", offs}};
}

const char* llama_stop_type(const Finish& f) {
    return f.reason == "length" ? "limit" : "eos";
}

// The whole (non-streamed) response body.
json final_response(const State& st, const GenRequest& req, const std::string& id, const std::string& text,
                    const std::vector<TokenLogprob>& lps, const Finish& f) {
    const tokenizer::Tokenizer& tok = *st.session->tokenizer();
    if (req.endpoint == Endpoint::kLlamaCompletion)
        return json{{"content", text},
                    {"stop", true},
                    {"model", st.model_id},
                    {"tokens_predicted", f.n_generated},
                    {"tokens_evaluated", f.n_prompt},
                    {"tokens_cached", f.n_cached},
                    {"stop_type", llama_stop_type(f)},
                    {"timings", timings_json(f)}};
    json choice = {{"index", 0}, {"finish_reason", f.reason}, {"logprobs", nullptr}};
    if (req.endpoint == Endpoint::kChat) {
        choice["message"] = {{"role", "assistant"}, {"content", text}};
        if (req.n_logprobs >= 0) choice["logprobs"] = chat_logprobs(lps, tok);
    } else {
        choice["text"] = text;
        if (req.n_logprobs >= 0) choice["logprobs"] = completion_logprobs(lps, tok, 0);
    }
    return json{{"id", id},
                {"object", req.endpoint == Endpoint::kChat ? "chat.completion" : "text_completion"},
                {"created", std::time(nullptr)},
                {"model", st.model_id},
                {"system_fingerprint", "lowbit"},
                {"choices", json::array({choice})},
                {"usage", usage_json(f)},
                {"timings", timings_json(f)}};
}

// One streamed chunk (delta) for `text`; finish_reason when `fin`.
json stream_chunk(const State& st, const GenRequest& req, const std::string& id, const json& delta_or_text,
                  const json& logprobs, const json& finish_reason) {
    json choice = {{"index", 0}, {"finish_reason", finish_reason}, {"logprobs", logprobs}};
    if (req.endpoint == Endpoint::kChat)
        choice["delta"] = delta_or_text;
    else
        choice["text"] = delta_or_text;
    return json{{"id", id},
                {"object", req.endpoint == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
                {"created", std::time(nullptr)},
                {"model", st.model_id},
                {"system_fingerprint", "lowbit"},
                {"choices", json::array({choice})}};
}

bool write_event(httplib::DataSink& sink, const json& j) {
    const std::string s = "data: " + dump(j) + "\n\n";
    return sink.write(s.data(), s.size());
}

// Streams a task's output as SSE (OpenAI chunks, or llama-server's /completion chunks).
void stream_task(State& st, httplib::Response& res, std::shared_ptr<Task> task) {
    struct Stream {
        std::shared_ptr<Task> task;
        std::string id;
        bool started = false;
        size_t text_bytes = 0;
    };
    auto s = std::make_shared<Stream>();
    s->task = std::move(task);
    s->id = random_id(s->task->req.endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-");
    res.set_header("Cache-Control", "no-cache");
    ++st.open_streams;
    res.set_chunked_content_provider(
        kSse,
        [&st, s](size_t, httplib::DataSink& sink) {
            const GenRequest& req = s->task->req;
            const tokenizer::Tokenizer& tok = *st.session->tokenizer();
            auto fail = [&] {
                s->task->cancel();
                return false;
            };
            if (!s->started) {
                s->started = true;
                if (req.endpoint == Endpoint::kChat &&
                    !write_event(
                        sink, stream_chunk(st, req, s->id, {{"role", "assistant"}, {"content", ""}}, nullptr, nullptr)))
                    return fail();
            }
            std::vector<Piece> pieces;
            std::optional<Finish> fin;
            if (!s->task->wait_take(1000ms, pieces, fin)) {
                static const char ping[] = ": ping\n\n"; // an SSE comment: detects a gone client during long prompts
                return sink.write(ping, sizeof(ping) - 1) ? true : fail();
            }
            for (const Piece& p : pieces) {
                if (p.text.empty() && p.logprobs.empty()) continue;
                json ev;
                if (req.endpoint == Endpoint::kLlamaCompletion) {
                    ev = {{"content", p.text}, {"stop", false}};
                } else {
                    json lp = nullptr;
                    if (req.n_logprobs >= 0)
                        lp = req.endpoint == Endpoint::kChat ? chat_logprobs(p.logprobs, tok)
                                                             : completion_logprobs(p.logprobs, tok, s->text_bytes);
                    const json content = req.endpoint == Endpoint::kChat ? json{{"content", p.text}} : json(p.text);
                    ev = stream_chunk(st, req, s->id, content, lp, nullptr);
                }
                s->text_bytes += p.text.size();
                if (!write_event(sink, ev)) return fail();
            }
            if (!fin) return true;
            if (fin->error) {
                write_event(sink, error_json(*fin->error));
                sink.done();
                return true;
            }
            bool ok = true;
            if (req.endpoint == Endpoint::kLlamaCompletion) {
                ok = write_event(sink, json{{"content", ""},
                                            {"stop", true},
                                            {"model", st.model_id},
                                            {"tokens_predicted", fin->n_generated},
                                            {"tokens_evaluated", fin->n_prompt},
                                            {"tokens_cached", fin->n_cached},
                                            {"stop_type", llama_stop_type(*fin)},
                                            {"timings", timings_json(*fin)}});
            } else {
                json last = stream_chunk(st, req, s->id, req.endpoint == Endpoint::kChat ? json::object() : json(""),
                                         nullptr, fin->reason);
                last["timings"] = timings_json(*fin);
                ok = write_event(sink, last);
                if (ok && req.include_usage) {
                    json u = stream_chunk(st, req, s->id, json::object(), nullptr, nullptr);
                    u["choices"] = json::array();
                    u["usage"] = usage_json(*fin);
                    ok = write_event(sink, u);
                }
                static const char done[] = "data: [DONE]\n\n";
                ok = ok && sink.write(done, sizeof(done) - 1);
            }
            if (!ok) return false;
            sink.done();
            return true;
        },
        [&st, s](bool success) {
            if (!success) s->task->cancel();
            --st.open_streams;
        });
}

// A non-streamed response. A request that finishes within a moment gets an ordinary response with its status;
// a longer one is sent chunked, led by spaces (JSON allows leading whitespace) written while it runs, so that a
// client that has gone is noticed (the write fails) and its generation cancelled.
void respond_task(State& st, httplib::Response& res, std::shared_ptr<Task> task) {
    struct Wait {
        std::shared_ptr<Task> task;
        std::vector<Piece> pieces;
        std::optional<Finish> fin;
        std::string id;
    };
    auto w = std::make_shared<Wait>();
    w->task = std::move(task);
    w->id = random_id(w->task->req.endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-");
    auto body = [&st, w]() {
        std::string text;
        std::vector<TokenLogprob> lps;
        for (Piece& p : w->pieces) {
            text += p.text;
            for (auto& lp : p.logprobs) lps.push_back(std::move(lp));
        }
        return final_response(st, w->task->req, w->id, text, lps, *w->fin);
    };
    const auto until = Clock::now() + 300ms;
    while (!w->fin && Clock::now() < until) w->task->wait_take(50ms, w->pieces, w->fin);
    if (w->fin) {
        if (w->fin->error) return send_error(res, *w->fin->error);
        return send_json(res, 200, body());
    }
    ++st.open_streams;
    res.set_chunked_content_provider(
        kJson,
        [w, body](size_t, httplib::DataSink& sink) {
            if (!w->fin) w->task->wait_take(100ms, w->pieces, w->fin);
            if (!w->fin) {
                if (sink.write(" ", 1)) return true;
                w->task->cancel();
                return false;
            }
            const std::string s = dump(w->fin->error ? error_json(*w->fin->error) : body());
            if (!sink.write(s.data(), s.size())) return false;
            sink.done();
            return true;
        },
        [&st, w](bool success) {
            if (!success) w->task->cancel();
            --st.open_streams;
        });
}

void handle_generation(State& st, Endpoint ep, const httplib::Request& req, httplib::Response& res) {
    auto parsed = parse_generation(ep, req.body, st.ctx);
    if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(res, *e);
    GenRequest& r = std::get<GenRequest>(parsed);
    const bool stream = r.stream;
    std::shared_ptr<Task> task = st.scheduler->submit(std::move(r));
    if (!task) {
        res.set_header("Retry-After", "1");
        return send_error(res, ApiError{503,
                                        fmt::format("the server is busy: all {} slots are in use and {} requests are "
                                                    "waiting (the queue's limit); retry later",
                                                    st.options.n_slots, st.options.max_queue),
                                        "unavailable_error", "", "server_busy"});
    }
    if (stream) return stream_task(st, res, std::move(task));
    respond_task(st, res, std::move(task));
}

std::string metrics_text(const State& st) {
    const SchedulerMetrics m = st.scheduler ? st.scheduler->metrics() : SchedulerMetrics{};
    std::string out;
    auto add = [&](const char* name, const char* type, const char* help, double v) {
        out += fmt::format("# HELP lowbit_{0} {1}\n# TYPE lowbit_{0} {2}\nlowbit_{0} {3}\n", name, help, type, v);
    };
    add("requests_total", "counter", "Generation requests accepted.", double(m.requests));
    add("requests_rejected_total", "counter", "Generation requests refused with 503 (queue full).", double(m.rejected));
    add("requests_finished_total", "counter", "Generation requests that finished.", double(m.finished));
    add("requests_cancelled_total", "counter", "Generation requests cancelled (client gone).", double(m.cancelled));
    add("prompt_tokens_total", "counter", "Prompt tokens of accepted requests.", double(m.prompt_tokens));
    add("prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's cache.", double(m.cached_tokens));
    add("tokens_predicted_total", "counter", "Generated tokens.", double(m.generated_tokens));
    add("decode_steps_total", "counter", "Forward steps (batches) run.", double(m.steps));
    add("decode_seconds_total", "counter", "Seconds spent in forward steps.", m.decode_seconds);
    add("tokens_per_second", "gauge", "Generated tokens per second of forward time.",
        m.decode_seconds > 0 ? double(m.generated_tokens) / m.decode_seconds : 0.0);
    add("slots_busy", "gauge", "Slots running a request.", double(m.slots_busy));
    add("slots_total", "gauge", "Slots (-np).", double(m.slots_total));
    add("queue_length", "gauge", "Requests waiting for a slot.", double(m.queue_length));
    return out;
}

void add_routes(httplib::Server& svr, State& st) {
    svr.Get("/health", [&st](const httplib::Request&, httplib::Response& res) {
        if (!st.ready) return send_error(res, ApiError{503, "Loading model", "unavailable_error", "", ""});
        send_json(res, 200, {{"status", "ok"}});
    });
    auto models = [&st](const httplib::Request&, httplib::Response& res) {
        const runtime::Session& s = *st.session;
        json meta = {{"n_ctx", s.n_ctx()},          {"n_slots", s.n_seq()},
                     {"n_vocab", s.n_vocab()},      {"n_params", s.n_params()},
                     {"size", s.model_bytes()},     {"n_ctx_train", s.config().max_position_embeddings},
                     {"device", s.backend_label()}, {"chat_template", chat_template_name(st.ctx.chat_template)}};
        send_json(res, 200,
                  {{"object", "list"},
                   {"data", json::array({{{"id", st.model_id},
                                          {"object", "model"},
                                          {"created", st.created},
                                          {"owned_by", "lowbit"},
                                          {"meta", meta}}})}});
    };
    svr.Get("/v1/models", models);
    svr.Get("/models", models);
    svr.Get("/metrics", [&st](const httplib::Request&, httplib::Response& res) {
        res.set_content(metrics_text(st), "text/plain; version=0.0.4");
    });
    const std::pair<const char*, Endpoint> gen[] = {{"/v1/chat/completions", Endpoint::kChat},
                                                    {"/chat/completions", Endpoint::kChat},
                                                    {"/v1/completions", Endpoint::kCompletions},
                                                    {"/completions", Endpoint::kCompletions},
                                                    {"/completion", Endpoint::kLlamaCompletion}};
    for (const auto& [path, ep] : gen)
        svr.Post(path, [&st, e = ep](const httplib::Request& req, httplib::Response& res) {
            handle_generation(st, e, req, res);
        });
    svr.Post("/tokenize", [&st](const httplib::Request& req, httplib::Response& res) {
        auto parsed = parse_json_object(req.body);
        if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(res, *e);
        const json& j = std::get<json>(parsed);
        if (!j.contains("content") || !j["content"].is_string())
            return send_error(res, ApiError{400, "'content' must be a string", "invalid_request_error", "content", ""});
        const bool add_special = j.value("add_special", false), with_pieces = j.value("with_pieces", false);
        const tokenizer::Tokenizer& tok = *st.session->tokenizer();
        const auto ids = tok.encode(j["content"].get<std::string>(), add_special, true);
        json tokens = json::array();
        for (int32_t id : ids)
            if (with_pieces)
                tokens.push_back({{"id", id}, {"piece", tokenizer::sanitize_utf8(tok.token_to_piece(id, true))}});
            else
                tokens.push_back(id);
        send_json(res, 200, {{"tokens", tokens}});
    });
    svr.Post("/detokenize", [&st](const httplib::Request& req, httplib::Response& res) {
        auto parsed = parse_json_object(req.body);
        if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(res, *e);
        const json& j = std::get<json>(parsed);
        const tokenizer::Tokenizer& tok = *st.session->tokenizer();
        if (!j.contains("tokens") || !j["tokens"].is_array())
            return send_error(
                res, ApiError{400, "'tokens' must be an array of token ids", "invalid_request_error", "tokens", ""});
        std::vector<int32_t> ids;
        for (const json& t : j["tokens"]) {
            if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok.n_vocab())
                return send_error(res,
                                  ApiError{400, fmt::format("'tokens' must hold token ids in [0, {})", tok.n_vocab()),
                                           "invalid_request_error", "tokens", ""});
            ids.push_back(int32_t(t.get<int64_t>()));
        }
        send_json(res, 200, {{"content", tokenizer::sanitize_utf8(tok.decode(ids, true))}});
    });
    svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
        res.set_content(chat_page_html(), "text/html; charset=utf-8");
    });
}

// SIGINT/SIGTERM are blocked in every thread serve starts and taken by sigtimedwait in serve's thread. Threads
// that exist before serve blocks them (OpenBLAS starts its pool when the library loads) can still receive a
// process-directed signal: a handler that records it, instead of the default action (termination, exit 143),
// makes that case a clean stop too.
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void record_stop_signal(int sig) {
    g_stop_signal = sig;
}

sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

} // namespace

Status serve(const ServerOptions& o) {
    if (o.n_slots < 1) return make_error(ErrorCode::kUsage, "-np/--parallel must be >= 1");
    if (o.port < 0 || o.port > 65535) return make_error(ErrorCode::kUsage, "--port must be in [0, 65535]");
    if (o.max_queue < 0) return make_error(ErrorCode::kUsage, "--max-queue must be >= 0");
    if (o.n_step < 1) return make_error(ErrorCode::kUsage, "-b/--batch-size must be >= 1");
    if (o.max_tokens_cap < 0) return make_error(ErrorCode::kUsage, "--max-tokens-cap must be >= 0 (0: the context)");
    if (o.timeout_s < 1) return make_error(ErrorCode::kUsage, "--timeout must be >= 1 second");
    // The template first: a model without one is a startup error naming the flag, before anything loads.
    LOWBIT_ASSIGN_OR_RETURN(const format::VocabData vocab, tokenizer::load_vocab(o.model));
    LOWBIT_ASSIGN_OR_RETURN(const ChatTemplate tmpl, resolve_chat_template(o.chat_template, vocab.chat_template));

    const sigset_t sigs = stop_signals();
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr); // before any thread starts: they inherit the mask
    struct sigaction sa {};
    sa.sa_handler = record_stop_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN); // a client gone mid-write is an error return, not a signal

    State st;
    st.options = o;
    st.model_id = o.alias;
    if (st.model_id.empty()) {
        std::string p = o.model;
        while (p.size() > 1 && p.back() == '/') p.pop_back();
        st.model_id = p.substr(p.find_last_of('/') == std::string::npos ? 0 : p.find_last_of('/') + 1);
    }

    httplib::Server svr;
    const size_t n_http = size_t(o.n_slots + o.max_queue + 16);
    svr.new_task_queue = [n_http] { return new httplib::ThreadPool(n_http); };
    svr.set_read_timeout(o.timeout_s, 0);
    svr.set_write_timeout(o.timeout_s, 0);
    svr.set_keep_alive_max_count(1000);
    svr.set_keep_alive_timeout(5);
    svr.set_payload_max_length(o.max_body_bytes);
    const std::string api_key = o.api_key;
    svr.set_pre_routing_handler([&st, api_key](const httplib::Request& req, httplib::Response& res) {
        if (req.path == "/health" || req.path == "/") return httplib::Server::HandlerResponse::Unhandled;
        if (!api_key.empty()) {
            std::string given = req.get_header_value("Authorization");
            if (given.rfind("Bearer ", 0) == 0) given = given.substr(7);
            if (given.empty()) given = req.get_header_value("X-Api-Key");
            if (!constant_time_equal(given, api_key)) {
                send_error(res, ApiError{401, "invalid or missing API key (send 'Authorization: Bearer KEY')",
                                         "authentication_error", "", "invalid_api_key"});
                return httplib::Server::HandlerResponse::Handled;
            }
        }
        if (!st.ready) {
            send_error(res, ApiError{503, "Loading model", "unavailable_error", "", ""});
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });
    const size_t max_body = o.max_body_bytes;
    svr.set_error_handler([max_body](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        if (res.status == 413)
            send_error(res,
                       ApiError{413, fmt::format("the request body is larger than the limit of {} bytes", max_body),
                                "invalid_request_error", "", "payload_too_large"});
        else if (res.status == 404)
            send_error(res, ApiError{404, fmt::format("no route for {} {}", req.method, req.path),
                                     "invalid_request_error", "", "not_found"});
        else
            send_error(res, ApiError{res.status, fmt::format("HTTP {} for {} {}", res.status, req.method, req.path),
                                     "invalid_request_error", "", ""});
    });
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        send_error(res, ApiError{500, "internal error: " + what, "server_error", "", ""});
    });
    add_routes(svr, st);
    // cpp-httplib 0.11 listens with a backlog of 5: a burst of connections overflows it and clients see resets.
    // The listening socket is taken here (the options hook runs before bind) and listen() is called again.
    int listen_fd = -1;
    svr.set_socket_options([&listen_fd](socket_t sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
        listen_fd = sock;
    });

    const int port = o.port == 0 ? svr.bind_to_any_port(o.host) : (svr.bind_to_port(o.host, o.port) ? o.port : -1);
    if (port < 0)
        return make_error(ErrorCode::kIo, fmt::format("cannot listen on {}:{} (in use, or not an address of this "
                                                      "machine)",
                                                      o.host, o.port));
    if (listen_fd >= 0) ::listen(listen_fd, 1024);
    std::thread http([&svr] { svr.listen_after_bind(); });
    auto shutdown_http = [&] {
        svr.stop();
        http.join();
    };

    // Test hook, not a feature: LOWBIT_TEST_SERVE_LOAD_DELAY_MS=N waits N ms (at most 60 s) before loading the
    // model, so tests/server/test_serve_loading.py can see /health answer 503 while loading (the reference model
    // loads in well under a second).
    if (const char* delay = std::getenv("LOWBIT_TEST_SERVE_LOAD_DELAY_MS")) {
        const long ms = std::clamp(std::atol(delay), 0L, 60000L);
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    runtime::SessionOptions so;
    so.n_threads = o.n_threads;
    so.n_ctx = o.n_ctx;
    so.n_seq = o.n_slots;
    so.n_batch = o.n_step;
    so.cache_type = o.cache_type;
    so.device = o.device;
    auto session = runtime::Session::open(o.model, so);
    if (!session.ok()) {
        shutdown_http();
        return session.error();
    }
    st.session = std::move(session).value();
    if (!st.session->tokenizer()) {
        shutdown_http();
        return make_error(ErrorCode::kBadInput,
                          o.model + ": the model has no usable tokenizer, so it cannot serve text");
    }
    st.ctx.tok = st.session->tokenizer();
    st.ctx.chat_template = tmpl;
    st.ctx.n_ctx = st.session->n_ctx();
    st.ctx.max_tokens_cap = o.max_tokens_cap > 0 ? o.max_tokens_cap : st.ctx.n_ctx;
    st.ctx.model_id = st.model_id;
    SchedulerOptions sched;
    sched.max_queue = o.max_queue;
    sched.n_step = o.n_step;
    st.scheduler = std::make_unique<Scheduler>(*st.session, sched);
    st.ready = true;
    std::printf("lowbit serve: %s on http://%s:%d (%s, %lld slots x %lld tokens, chat template %s)\n",
                st.model_id.c_str(), o.host.c_str(), port, st.session->backend_label().c_str(),
                static_cast<long long>(st.session->n_seq()), static_cast<long long>(st.session->n_ctx()),
                chat_template_name(tmpl));
    std::fflush(stdout);

    bool was_running = false;
    for (;;) {
        timespec ts{0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&sigs, nullptr, &ts);
        if (sig < 0 && g_stop_signal != 0) sig = g_stop_signal;
        if (sig == SIGINT || sig == SIGTERM) {
            log_info("signal {}: stopping (in-flight requests get an error)", sig);
            break;
        }
        if (svr.is_running())
            was_running = true;
        else if (was_running)
            break; // the listener ended on its own
    }
    st.scheduler->stop(); // waiting handlers get their 503 and return
    // Streams in flight write their ending (the scheduler ended their tasks with an error) before the listener
    // stops: once stopping, httplib calls no chunked provider again, which would cut a stream without its end
    // (seen under ASan, where the handlers are slow). Bounded: a client that does not read is not waited for long.
    for (const auto until = Clock::now() + std::chrono::seconds(5); st.open_streams.load() > 0 && Clock::now() < until;)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    shutdown_http();
    st.ready = false;
    std::fprintf(stderr, "lowbit serve: stopped\n");
    return ok_status();
}

} // namespace lowbit::server
