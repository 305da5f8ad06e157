// SPDX-License-Identifier: MIT
// libFuzzer harness for the GGUF reader: any byte string must parse or fail with an error — never crash, hang,
// read out of bounds or trip UBSan. Files that parse are walked completely (metadata, tensor bytes, vocab and
// config extraction) and must survive a write -> read round trip with identical content.
#include "core/log.h"
#include "format/gguf/gguf_file.h"
#include "format/gguf/gguf_model.h"
#include "format/gguf/gguf_writer.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

namespace {

using lowbit::gguf::File;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

// Rewrites a parsed file with gguf::Writer and checks the reader sees the same metadata and tensors.
void round_trip(const File& f) {
    lowbit::gguf::Writer w;
    for (const auto& kv : f.kvs())
        if (!w.set(kv.key, kv.value).ok()) return; // the writer is allowed to be stricter than the reader
    for (const auto& t : f.tensors())
        if (!w.add_tensor_ref(t.name, t.dtype, t.shape, f.tensor_data(t)).ok()) return;
    auto bytes = w.write_to_memory();
    check(bytes.ok());
    auto g = File::open_memory(*bytes, "rewritten");
    check(g.ok());
    check((*g)->kvs().size() == f.kvs().size() && (*g)->tensors().size() == f.tensors().size());
    for (size_t i = 0; i < f.kvs().size(); ++i) {
        check((*g)->kvs()[i].key == f.kvs()[i].key);
        check((*g)->kvs()[i].value.to_json() == f.kvs()[i].value.to_json()); // to_json: NaN-safe equality
    }
    for (size_t i = 0; i < f.tensors().size(); ++i) {
        const auto& a = f.tensors()[i];
        const auto& b = (*g)->tensors()[i];
        check(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.n_bytes == b.n_bytes);
        check(std::memcmp(f.tensor_data(a), (*g)->tensor_data(b), a.n_bytes) == 0);
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    lowbit::set_log_level(lowbit::LogLevel::kQuiet); // vocab warnings would flood the output
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto f = File::open_memory(std::span<const uint8_t>(data, size), "fuzz");
    if (!f.ok()) return 0;
    const File& file = **f;
    size_t sink = 0;
    for (const auto& kv : file.kvs()) sink += kv.value.to_json().size();
    for (const auto& t : file.tensors()) {
        check(t.offset_bytes + t.n_bytes <= file.file_size());
        const uint8_t* p = file.tensor_data(t);
        sink += p[0] + p[t.n_bytes - 1]; // first and last byte: ASan checks they are inside the input
        auto v = file.view(t.name);
        check(v.ok() && v->n_bytes() == t.n_bytes);
    }
    (void)lowbit::gguf::vocab_from_gguf(file);
    (void)lowbit::gguf::config_from_gguf(file);
    round_trip(file);
    return sink == 0xFFFFFFFF ? 1 : 0;
}
