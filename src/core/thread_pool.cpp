// SPDX-License-Identifier: MIT
// ThreadPool implementation: the caller publishes a job under the mutex (fields, generation, claim counter) and
// wakes the workers; every thread, the caller included, claims chunk indices with a compare-and-swap on claim_,
// whose high half is the job's generation, so a worker that wakes after its job is over (or sees an older one)
// claims nothing. The caller waits only until finished_ reaches the chunk count.
#include "core/thread_pool.h"

#include <algorithm>
#include <memory>

namespace lowbit {

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
}

void ThreadPool::run_chunks(uint32_t gen, const Fn* job, int64_t n, int64_t chunk, int64_t n_chunks, int index) {
    for (;;) {
        uint64_t cur = claim_.load(std::memory_order_acquire);
        if (uint32_t(cur >> 32) != gen) return; // a later job: ours is over
        const int64_t c = int64_t(cur & 0xffffffffu);
        if (c >= n_chunks) return;
        if (!claim_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) continue;
        // Chunk c is ours: its caller waits for it, so job and the fields copied with it stay valid.
        (*job)(c * chunk, std::min(n, (c + 1) * chunk), index);
        if (finished_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_chunks) {
            std::lock_guard<std::mutex> lock(mutex_); // the caller checks finished_ under the mutex: no lost wakeup
            done_.notify_one();
        }
    }
}

void ThreadPool::worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        const Fn* job = job_;
        const int64_t n = job_n_, chunk = chunk_, n_chunks = n_chunks_;
        lock.unlock();
        run_chunks(uint32_t(seen), job, n, chunk, n_chunks, index);
    }
}

void ThreadPool::run(int64_t n, const Fn& fn, int64_t chunk) {
    const int64_t n_chunks = (n + chunk - 1) / chunk;
    if (workers_.empty() || n_chunks <= 1) {
        fn(0, n, 0);
        return;
    }
    std::lock_guard<std::mutex> call_lock(call_mutex_);
    uint32_t gen;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = &fn;
        job_n_ = n, chunk_ = chunk, n_chunks_ = n_chunks;
        ++generation_;
        gen = uint32_t(generation_);
        finished_.store(0, std::memory_order_relaxed);
        claim_.store(uint64_t(gen) << 32, std::memory_order_release);
    }
    wake_.notify_all();
    run_chunks(gen, &fn, n, chunk, n_chunks, 0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return finished_.load(std::memory_order_acquire) == n_chunks; });
    job_ = nullptr;
}

void ThreadPool::parallel_for(int64_t n, const Fn& fn, int64_t grain) {
    if (n <= 0) return;
    const int64_t n_thr = n_threads();
    run(n, fn, std::max<int64_t>(std::max<int64_t>(grain, 1), (n + n_thr - 1) / n_thr));
}

void ThreadPool::parallel_for_tiles(int64_t n, const Fn& fn, int64_t tile) {
    if (n <= 0) return;
    run(n, fn, std::max<int64_t>(tile, 1));
}

namespace {
int g_default_threads = 0;
std::unique_ptr<ThreadPool> g_pool;
std::mutex g_pool_mutex;
} // namespace

ThreadPool& ThreadPool::global() {
    std::lock_guard<std::mutex> lock(g_pool_mutex);
    if (!g_pool) g_pool = std::make_unique<ThreadPool>(g_default_threads);
    return *g_pool;
}

void ThreadPool::set_default_threads(int n_threads) {
    std::lock_guard<std::mutex> lock(g_pool_mutex);
    if (g_pool && g_pool->n_threads() == n_threads) return;
    g_default_threads = n_threads;
    g_pool.reset();
}

} // namespace lowbit
