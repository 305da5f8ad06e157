// SPDX-License-Identifier: MIT
// ProgressBar for long work: redraws one line on a terminal (stderr), prints nothing when stderr is not a
// terminal (CI logs, pipes) unless forced. Thread-safe: tick() may be called from worker threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace lowbit {

class ProgressBar {
  public:
    ProgressBar(std::string label, int64_t total, bool enabled = stderr_is_terminal());
    ~ProgressBar();
    void tick(int64_t n = 1);
    void set_suffix(std::string suffix); // e.g. the tensor name or the running PPL
    void finish();
    static bool stderr_is_terminal();

  private:
    void draw(bool final);
    std::string label_, suffix_;
    int64_t total_;
    std::atomic<int64_t> done_{0};
    bool enabled_;
    bool finished_ = false;
    std::mutex mutex_;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

} // namespace lowbit
