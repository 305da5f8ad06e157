// SPDX-License-Identifier: MIT
// ProgressBar drawing: at most ~10 redraws a second, ETA from the mean rate so far.
#include "core/progress.h"

#include <cstdio>
#include <unistd.h>

namespace lowbit {

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
    finish();
}

bool ProgressBar::stderr_is_terminal() {
    return ::isatty(STDERR_FILENO) == 1;
}

void ProgressBar::tick(int64_t n) {
    done_ += n;
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mutex_);
    if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
    last_draw_ = now;
    draw(false);
}

void ProgressBar::set_suffix(std::string suffix) {
    std::lock_guard<std::mutex> lock(mutex_);
    suffix_ = std::move(suffix);
}

void ProgressBar::finish() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) return;
    finished_ = true;
    if (enabled_) {
        draw(true);
        std::fputc('\n', stderr);
    }
}

void ProgressBar::draw(bool final) {
    const int64_t done = done_.load();
    const double frac = total_ > 0 ? double(done) / double(total_) : 1.0;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double eta = frac > 0 ? secs * (1.0 - frac) / frac : 0.0;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth + 0.5);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r%s [%s] %lld/%lld %5.1fs%s%s %s\033[K", label_.c_str(), bar.c_str(), (long long)done,
                 (long long)total_, secs, final ? "" : " eta ", final ? "" : std::to_string(int(eta)).c_str(),
                 suffix_.c_str());
    std::fflush(stderr);
}

} // namespace lowbit
