// SPDX-License-Identifier: MIT
// fuzz-link: lowbit_runtime
// libFuzzer harness for model building (issue #15): a fuzzed GGUF header goes through Session::open — config from
// the metadata, weight binding by name/shape/dtype, KV cache, tokenizer — and, when it opens, through two decode
// steps. The input is followed by kTensorBudget zero bytes, so a header may declare tensors (up to that budget)
// past the input's end without the fuzzer having to supply their bytes: mutated shapes, types, counts and offsets
// all reach the model builder. Nothing may crash, abort, over-allocate or trip UBSan; every refusal is an error
// with a message. The KV cache is 8 positions, so its size stays small whatever the header claims.
#include "core/log.h"
#include "fuzz/fuzz_file.h"
#include "runtime/session.h"

#include <cmath>
#include <vector>

using lowbit::fuzz::check;

namespace {
constexpr size_t kTensorBudget = 256 * 1024;
} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    lowbit::set_log_level(lowbit::LogLevel::kQuiet);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::vector<uint8_t> zeros(kTensorBudget, 0);
    const std::string path = lowbit::fuzz::write_input(data, size, zeros.data(), zeros.size());
    lowbit::runtime::SessionOptions o;
    o.n_threads = 1;
    o.n_ctx = 8;
    o.n_batch = 4;
    auto s = lowbit::runtime::Session::open(path, o);
    if (!s.ok()) {
        check(!s.error().message.empty());
        return 0;
    }
    lowbit::runtime::Session& session = **s;
    const int64_t n_vocab = session.n_vocab();
    check(n_vocab >= 1 && session.n_ctx() == 8);
    if (const auto* tok = session.tokenizer()) {
        check(tok->n_vocab() <= n_vocab);
        for (int32_t id : tok->encode("a b", /*add_special=*/true, /*parse_special=*/true))
            check(id >= 0 && id < n_vocab);
    }
    std::vector<float> logits;
    const int32_t prompt[2] = {0, static_cast<int32_t>(n_vocab - 1)};
    const auto st = session.eval(prompt, /*all_logits=*/true, logits);
    check(st.ok() && int64_t(logits.size()) == 2 * n_vocab);
    const int32_t next[1] = {0};
    check(session.eval(next, false, logits).ok() && int64_t(logits.size()) == n_vocab);
    return 0;
}
