// SPDX-License-Identifier: MIT
// Log sink: one line per message on stderr, serialized across threads.
#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace lowbit {
namespace {
LogLevel level_from_env() {
    const char* v = std::getenv("LOWBIT_LOG");
    if (!v) return LogLevel::kInfo;
    if (!std::strcmp(v, "debug")) return LogLevel::kDebug;
    if (!std::strcmp(v, "warn")) return LogLevel::kWarn;
    if (!std::strcmp(v, "error")) return LogLevel::kError;
    if (!std::strcmp(v, "quiet")) return LogLevel::kQuiet;
    return LogLevel::kInfo;
}
std::atomic<int> g_level{static_cast<int>(level_from_env())};
std::mutex g_mutex;
} // namespace

void set_log_level(LogLevel level) {
    g_level = static_cast<int>(level);
}
LogLevel log_level() {
    return static_cast<LogLevel>(g_level.load());
}

void log_write(LogLevel level, std::string_view message) {
    // Warnings and errors carry the program name, as the CLI's "lowbit: error: …" does.
    static const char* const kPrefix[] = {"debug: ", "", "lowbit: warning: ", "lowbit: error: "};
    std::lock_guard<std::mutex> lock(g_mutex);
    std::fprintf(stderr, "%s%.*s\n", kPrefix[static_cast<int>(level)], static_cast<int>(message.size()),
                 message.data());
}

} // namespace lowbit
