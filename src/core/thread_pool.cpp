// SPDX-License-Identifier: MIT
// ThreadPool implementation: one generation counter wakes all workers; each takes chunk `index`.
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

void ThreadPool::worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        const auto* job = job_;
        const int64_t begin = static_cast<int64_t>(index) * chunk_;
        const int64_t end = std::min(job_n_, begin + chunk_);
        lock.unlock();
        if (begin < end) (*job)(begin, end, index);
        lock.lock();
        if (--pending_ == 0) done_.notify_one();
    }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn, int64_t grain) {
    if (n <= 0) return;
    const int64_t n_thr = n_threads();
    const int64_t chunk = std::max<int64_t>(std::max<int64_t>(grain, 1), (n + n_thr - 1) / n_thr);
    if (workers_.empty() || chunk >= n) {
        fn(0, n, 0);
        return;
    }
    std::lock_guard<std::mutex> call_lock(call_mutex_);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = &fn;
        job_n_ = n;
        chunk_ = chunk;
        pending_ = static_cast<int>(workers_.size());
        ++generation_;
    }
    wake_.notify_all();
    fn(0, std::min(n, chunk), 0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
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
