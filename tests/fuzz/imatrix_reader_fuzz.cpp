// SPDX-License-Identifier: MIT
// libFuzzer harness for the imatrix reader (issue #15): any bytes must read as a valid importance matrix or fail
// with a non-empty error — never crash, over-allocate or trip UBSan. What reads must hold the invariants quantize/
// relies on (non-empty sums, a whole number of matrices per entry) and survive a write -> read round trip.
#include "core/log.h"
#include "format/gguf/imatrix_file.h"
#include "fuzz/fuzz_file.h"

#include <cstring>

using lowbit::fuzz::check;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    lowbit::set_log_level(lowbit::LogLevel::kQuiet);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = lowbit::fuzz::write_input(data, size);
    auto m = lowbit::gguf::read_imatrix(path);
    if (!m.ok()) {
        check(!m.error().message.empty());
        return 0;
    }
    check(!m->entries.empty());
    for (const auto& [name, e] : m->entries) {
        check(!name.empty() && !e.counts.empty() && !e.in_sum2.empty());
        check(e.in_sum2.size() % e.counts.size() == 0);
    }
    // Round trip through the writer (into a second memfd-backed path would need a directory: use /dev/shm).
    static const std::string out = "/dev/shm/lowbit-imatrix-fuzz-" + std::to_string(getpid()) + ".gguf";
    if (lowbit::gguf::write_imatrix(out, *m).ok()) {
        auto back = lowbit::gguf::read_imatrix(out);
        check(back.ok() && back->entries.size() == m->entries.size());
        for (const auto& [name, e] : m->entries) {
            const auto it = back->entries.find(name);
            check(it != back->entries.end());
            check(it->second.in_sum2.size() == e.in_sum2.size() && it->second.counts.size() == e.counts.size());
            check(std::memcmp(it->second.in_sum2.data(), e.in_sum2.data(), e.in_sum2.size() * 4) == 0);
            check(std::memcmp(it->second.counts.data(), e.counts.data(), e.counts.size() * 4) == 0);
        }
        unlink(out.c_str());
    }
    return 0;
}
