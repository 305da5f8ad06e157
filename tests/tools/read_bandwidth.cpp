// SPDX-License-Identifier: MIT
// The machine's memory read bandwidth, for the CPU benchmarks' roofline (issue #16: how far tg is from the read
// limit): T threads each sum their slice of a buffer much larger than the caches, R times; prints the best GB/s.
//   read_bandwidth [--mib 1024] [--threads N] [--reps 5]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

// Eight independent xors per cache line, so the loads, not a dependency chain, bound the loop.
uint64_t sum_slice(const uint64_t* __restrict p, size_t n) {
    uint64_t a[8] = {};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) a[j] ^= p[i + size_t(j)];
    for (; i < n; ++i) a[0] ^= p[i];
    return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}

int usage() {
    std::fprintf(stderr, "usage: read_bandwidth [--mib N (16..65536)] [--threads N (1..256)] [--reps N (1..100)]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    long mib = 1024, threads = long(std::max(1u, std::thread::hardware_concurrency())), reps = 5;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        if (i + 1 >= argc) return usage();
        char* end = nullptr;
        const long v = std::strtol(argv[++i], &end, 10);
        if (!end || *end) return usage();
        if (k == "--mib" && v >= 16 && v <= 65536) {
            mib = v;
        } else if (k == "--threads" && v >= 1 && v <= 256) {
            threads = v;
        } else if (k == "--reps" && v >= 1 && v <= 100) {
            reps = v;
        } else {
            return usage();
        }
    }
    const size_t n = size_t(mib) << 17; // uint64 words
    std::vector<uint64_t> buf;
    try {
        buf.assign(n, 0);
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "read_bandwidth: cannot allocate %ld MiB\n", mib);
        return 1;
    }
    for (size_t i = 0; i < n; i += 512) buf[i] = i; // touched: every page is resident before timing
    double best = 0.0;
    uint64_t sink = 0;
    for (long r = 0; r < reps; ++r) {
        std::vector<uint64_t> part(size_t(threads), 0);
        std::vector<std::thread> pool;
        const auto t0 = std::chrono::steady_clock::now();
        for (long t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                const size_t lo = n * size_t(t) / size_t(threads), hi = n * size_t(t + 1) / size_t(threads);
                part[size_t(t)] = sum_slice(buf.data() + lo, hi - lo);
            });
        for (auto& th : pool) th.join();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, double(n * sizeof(uint64_t)) / s / 1e9);
        for (uint64_t v : part) sink ^= v;
    }
    std::printf("read bandwidth: %.1f GB/s (%ld threads, %ld MiB, best of %ld)%s\n", best, threads, mib, reps,
                sink == 1 ? " " : "");
    return 0;
}
