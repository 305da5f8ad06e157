// SPDX-License-Identifier: MIT
// Scheduler: continuous batching of generation requests over the Session's KV-cache slots.
// One thread owns the Session. Each step builds one model::Batch holding one token of every slot that is
// generating plus a chunk of the prompt of slots still prefilling (at most `n_step` tokens in all, so a long
// prompt does not stall the others), decodes it, samples every slot that asked for logits and hands the text
// to its Task. A request waits in a bounded queue when all slots are busy (submit returns null when that queue
// is full: the server answers 503 + Retry-After). A cancelled task (client gone) frees its slot at the next step.
// Prefix reuse: a new request takes the free slot whose cached tokens share the longest prefix with its prompt
// and evaluates only the rest (a conversation's next turn re-reads only the new messages).
// Thread-safety: submit/metrics/stop from any thread; Task is shared between the scheduler and one HTTP handler.
#pragma once

#include "runtime/session.h"
#include "server/request.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace lowbit::server {

struct TokenLogprob {
    int32_t id = 0;
    std::string piece; // the token's text (may be part of a UTF-8 character)
    float logprob = 0;
    std::vector<std::pair<int32_t, float>> top; // the most likely tokens, best first
};

struct Piece {
    std::string text; // complete UTF-8
    std::vector<TokenLogprob> logprobs;
};

struct Finish {
    std::string reason; // "stop" | "length"
    std::optional<ApiError> error;
    int64_t n_prompt = 0, n_cached = 0, n_generated = 0;
    double prompt_ms = 0, generate_ms = 0;
};

class Task {
  public:
    explicit Task(GenRequest r) : req(std::move(r)) {}
    const GenRequest req;
    const std::chrono::steady_clock::time_point t_submit = std::chrono::steady_clock::now();

    void cancel() { cancelled_.store(true); }
    bool cancelled() const { return cancelled_.load(); }
    // Consumer: waits up to `timeout` for output; moves the pieces produced so far into `out` and sets `fin` once
    // the task has finished. Returns true when something was taken.
    bool wait_take(std::chrono::milliseconds timeout, std::vector<Piece>& out, std::optional<Finish>& fin);
    // Producer (scheduler).
    void push(Piece p);
    void finish(Finish f);

  private:
    std::mutex m_;
    std::condition_variable cv_;
    std::vector<Piece> pieces_;
    std::optional<Finish> fin_;
    std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
    int64_t max_queue = 64; // requests waiting beyond the busy slots
    int64_t n_step = 256;   // tokens per forward step (generation tokens + prompt chunks)
};

struct SchedulerMetrics {
    uint64_t requests = 0, rejected = 0, finished = 0, cancelled = 0;
    uint64_t prompt_tokens = 0, cached_tokens = 0, generated_tokens = 0, steps = 0;
    double decode_seconds = 0;
    int64_t slots_busy = 0, slots_total = 0, queue_length = 0;
};

class Scheduler {
  public:
    Scheduler(runtime::Session& session, SchedulerOptions options);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Null when the queue is full or the scheduler is stopping.
    std::shared_ptr<Task> submit(GenRequest r);
    // Stops the loop; queued and running tasks finish with a 503 "shutting down" error. Idempotent.
    void stop();
    SchedulerMetrics metrics() const;

  private:
    struct Slot;
    void loop();
    void admit(std::shared_ptr<Task> task); // into a free slot (lock held)
    void release(Slot& slot);
    void step();
    void on_token(Slot& slot, const float* logits);
    void emit(Slot& slot, bool final);
    void complete(Slot& slot, const std::string& reason, bool by_stop_string);

    runtime::Session& session_;
    const tokenizer::Tokenizer& tok_;
    SchedulerOptions options_;
    std::vector<std::unique_ptr<Slot>> slots_;
    std::deque<std::shared_ptr<Task>> queue_;
    int64_t n_busy_ = 0;
    bool stopping_ = false;
    mutable std::mutex m_;
    std::condition_variable cv_;
    SchedulerMetrics metrics_; // counters, under m_
    uint64_t clock_ = 0;       // admission counter (LRU among free slots)
    model::Batch batch_;
    std::vector<float> logits_;
    std::thread thread_;
};

} // namespace lowbit::server
