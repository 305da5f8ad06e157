// SPDX-License-Identifier: MIT
// Overflow-checked size arithmetic for everything computed from untrusted counts and shapes.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <type_traits>
#include <unistd.h>

namespace lowbit {

inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
    uint64_t r;
    if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
    return r;
}
inline std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
    uint64_t r;
    if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
    return r;
}
// Product of all values; nullopt on overflow. The empty product is 1.
inline std::optional<uint64_t> checked_product(std::initializer_list<uint64_t> xs) {
    uint64_t r = 1;
    for (uint64_t x : xs) {
        if (__builtin_mul_overflow(r, x, &r)) return std::nullopt;
    }
    return r;
}
template <class It> std::optional<uint64_t> checked_product(It first, It last) {
    uint64_t r = 1;
    for (; first != last; ++first) {
        if constexpr (std::is_signed_v<typename std::iterator_traits<It>::value_type>) {
            if (*first < 0) return std::nullopt;
        }
        if (__builtin_mul_overflow(r, static_cast<uint64_t>(*first), &r)) return std::nullopt;
    }
    return r;
}
// Rounds x up to a multiple of `align` (> 0); nullopt on overflow.
inline std::optional<uint64_t> checked_align_up(uint64_t x, uint64_t align) {
    const uint64_t rem = x % align;
    if (rem == 0) return x;
    return checked_add(x, align - rem);
}

// The machine's physical memory: the stated limit large allocations sized from files or flags are checked against
// (KV cache, calibration activations) before they are attempted. UINT64_MAX when it cannot be read.
inline uint64_t physical_memory_bytes() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : UINT64_MAX;
}

} // namespace lowbit
