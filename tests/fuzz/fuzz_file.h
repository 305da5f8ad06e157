// SPDX-License-Identifier: MIT
// For harnesses whose reader takes a path: the input is written to one anonymous in-memory file (memfd) per
// process and handed over as /proc/self/fd/N, so nothing touches the disk and nothing is left behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

namespace lowbit::fuzz {

// Replaces the memfd's content with `a` followed by `b` (either may be empty) and returns its path.
inline std::string write_input(const uint8_t* a, size_t na, const uint8_t* b = nullptr, size_t nb = 0) {
    static const int fd = [] {
        const int f = memfd_create("lowbit-fuzz", 0);
        if (f < 0) std::abort();
        return f;
    }();
    if (ftruncate(fd, 0) != 0) std::abort();
    auto put = [](const uint8_t* p, size_t n, off_t at) {
        while (n > 0) {
            const ssize_t w = pwrite(fd, p, n, at);
            if (w <= 0) std::abort();
            p += w, n -= size_t(w), at += w;
        }
    };
    put(a, na, 0);
    if (nb) put(b, nb, off_t(na));
    return "/proc/self/fd/" + std::to_string(fd);
}

inline void check(bool ok) {
    if (!ok) __builtin_trap();
}

} // namespace lowbit::fuzz
