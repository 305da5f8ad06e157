// SPDX-License-Identifier: MIT
// ThreadPool: a fixed set of workers for data-parallel loops. parallel_for splits [0, n) into contiguous
// chunks, runs them on the workers and the calling thread, and returns when all are done.
// Chunks are claimed, not assigned: whichever thread comes first runs the next unclaimed chunk, so a worker that
// the OS has not scheduled yet (2 cores shared by several jobs) never holds the caller up; the caller only waits
// for chunks already running. Chunk boundaries depend on n, grain and the thread count only, never on timing.
// Thread-safety: one parallel_for at a time per pool (calls from several threads are serialized).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lowbit {

class ThreadPool {
  public:
    using Fn = std::function<void(int64_t, int64_t, int)>;

    // n_threads <= 0 means std::thread::hardware_concurrency(). The caller counts as one thread.
    explicit ThreadPool(int n_threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int n_threads() const { return static_cast<int>(workers_.size()) + 1; }

    // fn(begin, end, thread_index) over chunks covering [0, n): one chunk per thread, each at least `grain` long.
    void parallel_for(int64_t n, const Fn& fn, int64_t grain = 1);
    // The same with chunks of exactly `tile` (the last one shorter), claimed one at a time: threads that run
    // faster (or start earlier) take more of them. For loops whose items are independent (matmul rows).
    void parallel_for_tiles(int64_t n, const Fn& fn, int64_t tile);

    // A process-wide pool sized by set_default_threads (default: hardware concurrency).
    static ThreadPool& global();
    static void set_default_threads(int n_threads);

  private:
    void run(int64_t n, const Fn& fn, int64_t chunk);
    // Claims and runs chunks of the job published as `gen` until none is left.
    void run_chunks(uint32_t gen, const Fn* job, int64_t n, int64_t chunk, int64_t n_chunks, int index);
    void worker_loop(int index);

    std::vector<std::thread> workers_;
    std::mutex call_mutex_; // serializes parallel_for calls
    std::mutex mutex_;      // guards the job fields and generation_
    std::condition_variable wake_;
    std::condition_variable done_;
    const Fn* job_ = nullptr;
    int64_t job_n_ = 0;
    int64_t chunk_ = 0;
    int64_t n_chunks_ = 0;
    uint64_t generation_ = 0;
    bool stop_ = false;
    std::atomic<uint64_t> claim_{0};   // (generation << 32) | next unclaimed chunk
    std::atomic<int64_t> finished_{0}; // chunks of the current job run to the end
};

} // namespace lowbit
