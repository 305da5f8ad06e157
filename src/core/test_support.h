// SPDX-License-Identifier: MIT
// Header-only helpers for GoogleTest suites (never included by library code).
// shared_data_path(): a file under $LOWBIT_SHARED. Contract from the project: when LOWBIT_SHARED is unset
// (a user's fresh clone) tests that need it SKIP with a message; when it is set but the file is missing,
// they FAIL. Use: `LOWBIT_REQUIRE_SHARED(path, "data/golden/llamacpp/manifest.json");`
#pragma once

#include <cstdlib>
#include <gtest/gtest.h>
#include <string>
#include <sys/stat.h>

namespace lowbit::testing_support {

// $LOWBIT_SHARED, or nullptr when unset. A relative value (README's `LOWBIT_SHARED=../shared`) is taken relative to
// the repository root, where README's commands run: ctest runs each test in the build directory, where the same
// relative path would point nowhere (scripts/test.sh makes it absolute first; this covers a bare ctest run).
inline const char* shared_root() {
    static const std::string root = [] {
        const char* s = std::getenv("LOWBIT_SHARED");
        if (!s || !*s) return std::string();
        if (s[0] == '/') return std::string(s);
        return std::string(LOWBIT_SOURCE_DIR) + "/" + s;
    }();
    return root.empty() ? nullptr : root.c_str();
}

inline bool path_exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

inline std::string source_dir() {
    return LOWBIT_SOURCE_DIR;
}
inline std::string binary_dir() {
    return LOWBIT_BINARY_DIR;
}
inline std::string temp_dir() {
    return ::testing::TempDir();
}

} // namespace lowbit::testing_support

// Declares `std::string var` = $LOWBIT_SHARED/rel, or skips/fails the test as the contract says.
#define LOWBIT_REQUIRE_SHARED(var, rel)                                                                                \
    std::string var;                                                                                                   \
    do {                                                                                                               \
        const char* root_ = ::lowbit::testing_support::shared_root();                                                  \
        if (!root_) GTEST_SKIP() << "LOWBIT_SHARED is not set; skipping a test that needs " << (rel);                  \
        var = std::string(root_) + "/" + (rel);                                                                        \
        if (!::lowbit::testing_support::path_exists(var))                                                              \
            FAIL() << "LOWBIT_SHARED is set but " << var << " is missing";                                             \
    } while (0)
