// SPDX-License-Identifier: MIT
// Logging with levels to stderr. Level from set_log_level or LOWBIT_LOG=debug|info|warn|error.
#pragma once

#include <fmt/format.h>
#include <string_view>

namespace lowbit {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kQuiet = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_write(LogLevel level, std::string_view message);

template <class... Args> void log_debug(fmt::format_string<Args...> f, Args&&... args) {
    if (log_level() <= LogLevel::kDebug) log_write(LogLevel::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args> void log_info(fmt::format_string<Args...> f, Args&&... args) {
    if (log_level() <= LogLevel::kInfo) log_write(LogLevel::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args> void log_warn(fmt::format_string<Args...> f, Args&&... args) {
    if (log_level() <= LogLevel::kWarn) log_write(LogLevel::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args> void log_error(fmt::format_string<Args...> f, Args&&... args) {
    if (log_level() <= LogLevel::kError) log_write(LogLevel::kError, fmt::format(f, std::forward<Args>(args)...));
}

} // namespace lowbit
