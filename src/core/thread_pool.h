// SPDX-License-Identifier: MIT
// ThreadPool: a fixed set of workers for data-parallel loops. parallel_for splits [0, n) into contiguous
// chunks, runs them on the workers and the calling thread, and returns when all are done.
// Thread-safety: one parallel_for at a time per pool (calls from several threads are serialized).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lowbit {

class ThreadPool {
  public:
    // n_threads <= 0 means std::thread::hardware_concurrency(). The caller counts as one thread.
    explicit ThreadPool(int n_threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int n_threads() const { return static_cast<int>(workers_.size()) + 1; }

    // fn(begin, end, thread_index) over chunks covering [0, n); chunks are at least `grain` long.
    void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn, int64_t grain = 1);

    // A process-wide pool sized by set_default_threads (default: hardware concurrency).
    static ThreadPool& global();
    static void set_default_threads(int n_threads);

  private:
    void worker_loop(int index);

    std::vector<std::thread> workers_;
    std::mutex call_mutex_; // serializes parallel_for calls
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
    int64_t job_n_ = 0;
    int64_t chunk_ = 0;
    uint64_t generation_ = 0;
    int pending_ = 0;
    bool stop_ = false;
};

} // namespace lowbit
