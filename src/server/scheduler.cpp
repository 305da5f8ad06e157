// SPDX-License-Identifier: MIT
// The continuous-batching loop (see scheduler.h).
#include "server/scheduler.h"

#include "core/log.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace lowbit::server {

using Clock = std::chrono::steady_clock;

static double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

bool Task::wait_take(std::chrono::milliseconds timeout, std::vector<Piece>& out, std::optional<Finish>& fin) {
    std::unique_lock lock(m_);
    cv_.wait_for(lock, timeout, [&] { return !pieces_.empty() || fin_.has_value(); });
    const bool any = !pieces_.empty() || fin_.has_value();
    for (Piece& p : pieces_) out.push_back(std::move(p));
    pieces_.clear();
    if (fin_) fin = fin_;
    return any;
}

void Task::push(Piece p) {
    {
        std::lock_guard lock(m_);
        pieces_.push_back(std::move(p));
    }
    cv_.notify_all();
}

void Task::finish(Finish f) {
    {
        std::lock_guard lock(m_);
        if (fin_) return;
        fin_ = std::move(f);
    }
    cv_.notify_all();
}

struct Scheduler::Slot {
    int32_t index = 0;
    std::shared_ptr<Task> task;  // null: free
    std::vector<int32_t> cached; // tokens whose K/V rows the slot holds (positions 0..size-1)
    size_t n_prompt_done = 0;    // prompt tokens in `cached`
    bool generating = false;     // prompt done; `next` is the token to feed
    int32_t next = 0;
    std::optional<runtime::Sampler> sampler;
    std::optional<tokenizer::Detokenizer> detok;
    std::string text; // generated text so far (stop strings cut it)
    size_t sent = 0;  // bytes of `text` handed to the task
    std::vector<TokenLogprob> pending_lp;
    Finish fin;
    Clock::time_point t_start, t_first;
    uint64_t last_used = 0;
};

Scheduler::Scheduler(runtime::Session& session, SchedulerOptions options)
    : session_(session), tok_(*session.tokenizer()), options_(options) {
    for (int64_t s = 0; s < session.n_seq(); ++s) {
        slots_.push_back(std::make_unique<Slot>());
        slots_.back()->index = int32_t(s);
    }
    metrics_.slots_total = session.n_seq();
    thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
    stop();
}

std::shared_ptr<Task> Scheduler::submit(GenRequest r) {
    auto task = std::make_shared<Task>(std::move(r));
    {
        std::lock_guard lock(m_);
        const int64_t free_slots = int64_t(slots_.size()) - n_busy_;
        if (stopping_ || int64_t(queue_.size()) >= options_.max_queue + free_slots) {
            ++metrics_.rejected;
            return nullptr;
        }
        ++metrics_.requests;
        queue_.push_back(task);
    }
    cv_.notify_all();
    return task;
}

void Scheduler::stop() {
    {
        std::lock_guard lock(m_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

SchedulerMetrics Scheduler::metrics() const {
    std::lock_guard lock(m_);
    SchedulerMetrics m = metrics_;
    m.slots_busy = n_busy_;
    m.queue_length = int64_t(queue_.size());
    return m;
}

void Scheduler::admit(std::shared_ptr<Task> task) {
    // The free slot sharing the longest cached prefix with the prompt; ties: least recently used.
    const std::vector<int32_t>& prompt = task->req.prompt;
    Slot* best = nullptr;
    size_t best_lcp = 0;
    for (auto& sp : slots_) {
        Slot& s = *sp;
        if (s.task) continue;
        const size_t n = std::min(s.cached.size(), prompt.size());
        const size_t lcp = size_t(std::mismatch(prompt.begin(), prompt.begin() + ptrdiff_t(n), s.cached.begin()).first -
                                  prompt.begin());
        if (!best || lcp > best_lcp || (lcp == best_lcp && s.last_used < best->last_used)) best = &s, best_lcp = lcp;
    }
    Slot& s = *best;
    const size_t keep = std::min(best_lcp, prompt.size() - 1); // evaluate at least the last prompt token
    session_.truncate_slot(s.index, int64_t(keep));
    s.cached.resize(keep);
    s.task = std::move(task);
    s.n_prompt_done = keep;
    s.generating = false;
    s.sampler.emplace(s.task->req.sampling);
    for (int32_t t : prompt) s.sampler->accept(t);
    s.detok.emplace(tok_, false); // control tokens print nothing, as llama-server's replies
    s.text.clear(), s.sent = 0, s.pending_lp.clear();
    s.fin = Finish{};
    s.fin.n_prompt = int64_t(prompt.size()), s.fin.n_cached = int64_t(keep);
    s.t_start = Clock::now();
    s.last_used = ++clock_;
    ++n_busy_;
    metrics_.prompt_tokens += prompt.size();
    metrics_.cached_tokens += keep;
}

void Scheduler::release(Slot& s) {
    std::lock_guard lock(m_);
    s.task.reset();
    s.sampler.reset();
    s.detok.reset();
    --n_busy_;
}

void Scheduler::loop() {
    for (;;) {
        {
            std::unique_lock lock(m_);
            cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || n_busy_ > 0; });
            if (stopping_) break;
            while (!queue_.empty() && n_busy_ < int64_t(slots_.size())) {
                std::shared_ptr<Task> t = std::move(queue_.front());
                queue_.pop_front();
                if (t->cancelled()) {
                    ++metrics_.cancelled;
                    t->finish(Finish{"stop", ApiError{499, "cancelled", "cancelled", "", ""}});
                    continue;
                }
                admit(std::move(t));
            }
        }
        for (auto& sp : slots_)
            if (sp->task && sp->task->cancelled()) {
                std::shared_ptr<Task> task = sp->task;
                {
                    std::lock_guard lock(m_);
                    ++metrics_.cancelled;
                }
                release(*sp);
                task->finish(Finish{"stop", ApiError{499, "cancelled", "cancelled", "", ""}});
            }
        step();
    }
    // Shutting down: every waiting or running request gets an error.
    const ApiError down{503, "the server is shutting down", "unavailable_error", "", ""};
    std::lock_guard lock(m_);
    for (auto& t : queue_) t->finish(Finish{"stop", down});
    queue_.clear();
    for (auto& sp : slots_)
        if (sp->task) sp->task->finish(Finish{"stop", down}), sp->task.reset(), --n_busy_;
}

void Scheduler::step() {
    batch_.clear();
    std::vector<Slot*> rows; // the slot of each logits row, in batch order
    for (auto& sp : slots_)
        if (sp->task && sp->generating) {
            batch_.add(sp->next, int32_t(sp->cached.size()), sp->index, true);
            rows.push_back(sp.get());
        }
    // Prompt chunks, oldest request first, within the step's token budget.
    std::vector<Slot*> prefill;
    for (auto& sp : slots_)
        if (sp->task && !sp->generating) prefill.push_back(sp.get());
    std::sort(prefill.begin(), prefill.end(), [](const Slot* a, const Slot* b) { return a->last_used < b->last_used; });
    std::vector<std::pair<Slot*, size_t>> chunks;
    int64_t budget = std::max<int64_t>(options_.n_step - batch_.size(), 16);
    for (Slot* s : prefill) {
        if (budget <= 0) break;
        const std::vector<int32_t>& prompt = s->task->req.prompt;
        const size_t n = std::min(prompt.size() - s->n_prompt_done, size_t(budget));
        const bool last = s->n_prompt_done + n == prompt.size();
        for (size_t i = 0; i < n; ++i) {
            const size_t p = s->n_prompt_done + i;
            batch_.add(prompt[p], int32_t(p), s->index, last && i + 1 == n);
        }
        if (last) rows.push_back(s);
        chunks.emplace_back(s, n);
        budget -= int64_t(n);
    }
    if (batch_.size() == 0) return;
    // Logits rows come in batch order: generating slots first, then completed prompts (as `rows` lists them).

    const auto t0 = Clock::now();
    const Status st = session_.decode(batch_, logits_);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!st.ok()) {
        log_error("decode failed: {}", st.error().message);
        for (auto& sp : slots_)
            if (sp->task) {
                sp->task->finish(
                    Finish{"stop", ApiError{500, "decode failed: " + st.error().message, "server_error", "", ""}});
                session_.clear_slot(sp->index);
                sp->cached.clear();
                release(*sp);
            }
        return;
    }
    {
        std::lock_guard lock(m_);
        metrics_.steps++;
        metrics_.decode_seconds += dt;
    }
    for (auto& [s, n] : chunks) {
        const std::vector<int32_t>& prompt = s->task->req.prompt;
        s->cached.insert(s->cached.end(), prompt.begin() + ptrdiff_t(s->n_prompt_done),
                         prompt.begin() + ptrdiff_t(s->n_prompt_done + n));
        s->n_prompt_done += n;
    }
    const int64_t n_vocab = session_.n_vocab();
    for (size_t r = 0; r < rows.size(); ++r) {
        Slot& s = *rows[r];
        if (s.generating) s.cached.push_back(s.next); // the fed token is in the cache now
        on_token(s, logits_.data() + int64_t(r) * n_vocab);
    }
}

void Scheduler::on_token(Slot& s, const float* logits) {
    const GenRequest& req = s.task->req;
    const int64_t n_vocab = session_.n_vocab();
    const auto now = Clock::now();
    if (!s.generating) {
        s.generating = true;
        s.t_first = now;
        s.fin.prompt_ms = ms_between(s.t_start, now);
    }
    const int32_t id = s.sampler->sample(std::span<const float>(logits, size_t(n_vocab)));
    s.sampler->accept(id);
    if (tok_.is_eog(id)) return complete(s, "stop", false);

    if (req.n_logprobs >= 0) {
        const float mx = *std::max_element(logits, logits + n_vocab);
        double sum = 0;
        for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(double(logits[i] - mx));
        const float lse = mx + float(std::log(sum));
        TokenLogprob lp;
        lp.id = id;
        lp.piece = tok_.token_to_piece(id, true);
        lp.logprob = logits[id] - lse;
        std::vector<int32_t> idx(static_cast<size_t>(n_vocab));
        std::iota(idx.begin(), idx.end(), 0);
        const size_t k = std::min<size_t>(size_t(req.n_logprobs), idx.size());
        std::partial_sort(idx.begin(), idx.begin() + ptrdiff_t(k), idx.end(), [&](int32_t a, int32_t b) {
            return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
        });
        for (size_t i = 0; i < k; ++i) lp.top.emplace_back(idx[i], logits[idx[i]] - lse);
        s.pending_lp.push_back(std::move(lp));
    }
    ++s.fin.n_generated;
    {
        std::lock_guard lock(m_);
        ++metrics_.generated_tokens;
    }
    s.text += s.detok->push(id);
    s.next = id;
    // Stop strings: cut the text at the first match; hold back a tail that may be the start of one.
    size_t longest = 0;
    for (const std::string& st : req.stop) longest = std::max(longest, st.size());
    if (longest > 0) {
        const size_t from = s.sent;
        size_t cut = std::string::npos;
        for (const std::string& st : req.stop) cut = std::min(cut, s.text.find(st, from));
        if (cut != std::string::npos) {
            s.text.resize(cut);
            return complete(s, "stop", true);
        }
    }
    if (s.fin.n_generated >= req.max_tokens || int64_t(s.cached.size()) + 1 > session_.n_ctx())
        return complete(s, "length", false);
    emit(s, false);
}

void Scheduler::emit(Slot& s, bool final) {
    size_t end = s.text.size();
    if (!final)
        for (const std::string& st : s.task->req.stop) // hold back a suffix that is a prefix of a stop string
            for (size_t k = std::min(st.size() - 1, s.text.size() - s.sent); k > 0; --k)
                if (s.text.compare(s.text.size() - k, k, st, 0, k) == 0) {
                    end = std::min(end, s.text.size() - k);
                    break;
                }
    if (end <= s.sent && (s.pending_lp.empty() || !final)) return;
    Piece p;
    p.text = s.text.substr(s.sent, end - s.sent);
    p.logprobs = std::move(s.pending_lp);
    s.pending_lp.clear();
    s.sent = end;
    s.task->push(std::move(p));
}

void Scheduler::complete(Slot& s, const std::string& reason, bool by_stop_string) {
    // EOG / length: bytes the detokenizer holds back end the text; a stop-string match has already cut it.
    if (!by_stop_string) s.text += s.detok->flush();
    emit(s, true);
    s.fin.reason = reason;
    s.fin.generate_ms = ms_between(s.t_first, Clock::now());
    std::shared_ptr<Task> task = s.task;
    {
        std::lock_guard lock(m_);
        ++metrics_.finished;
    }
    release(s); // the slot is free before the client hears: its next request finds room
    task->finish(s.fin);
}

} // namespace lowbit::server
