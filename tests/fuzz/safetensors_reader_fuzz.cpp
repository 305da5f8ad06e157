// SPDX-License-Identifier: MIT
// libFuzzer harness for the safetensors reader: any byte string must parse or fail with an error — never
// crash, read out of bounds or trip UBSan. Files that parse are walked completely (every tensor's bytes) and
// must survive a write -> read round trip with identical names, dtypes, shapes, bytes and metadata.
#include "core/file.h"
#include "core/log.h"
#include "format/safetensors/safetensors_reader.h"
#include "format/safetensors/safetensors_writer.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using lowbit::safetensors::Store;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

void round_trip(const Store& s) {
    std::vector<lowbit::safetensors::TensorToWrite> ts;
    for (const auto& t : s.tensors()) {
        auto v = s.view(t.name);
        check(v.ok());
        ts.push_back({t.name, t.dtype, t.shape, v->data, {}});
    }
    lowbit::safetensors::WriteOptions o;
    o.metadata = s.metadata();
    static const std::string path = "/tmp/safetensors_reader_fuzz_" + std::to_string(::getpid()) + ".safetensors";
    auto w = lowbit::safetensors::write_safetensors(path, ts, o);
    if (!w.ok()) return; // e.g. metadata the writer refuses; the reader may be more lenient
    auto back = Store::open(path);
    check(back.ok());
    check((*back)->tensors().size() == s.tensors().size());
    check((*back)->metadata() == s.metadata());
    for (const auto& t : s.tensors()) {
        const auto* u = (*back)->find(t.name);
        check(u && u->dtype == t.dtype && u->shape == t.shape && u->n_bytes == t.n_bytes);
        auto a = s.view(t.name);
        auto b = (*back)->view(t.name);
        check(a.ok() && b.ok() && (t.n_bytes == 0 || std::memcmp(a->data, b->data, t.n_bytes) == 0));
    }
    std::remove(path.c_str());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static bool quiet = (lowbit::set_log_level(lowbit::LogLevel::kQuiet), true);
    (void)quiet;
    auto s = Store::from_buffer(data, size);
    if (!s.ok()) {
        check(!s.error().message.empty());
        return 0;
    }
    uint64_t sum = 0;
    for (const auto& t : (*s)->tensors()) {
        auto v = (*s)->view(t.name);
        check(v.ok());
        const auto* p = static_cast<const uint8_t*>(v->data);
        for (uint64_t k = 0; k < t.n_bytes; ++k) sum += p[k];
    }
    (void)sum;
    round_trip(**s);
    return 0;
}
