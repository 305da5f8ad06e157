// SPDX-License-Identifier: MIT
// libFuzzer harness for tokenizer.json loading (issue #15): any text must load or fail with a non-empty error —
// never crash, throw, trip UBSan or build a table far larger than its entries (ids are bounded by the entry
// count); a vocabulary that loads has one type per token and special ids inside it.
#include "core/log.h"
#include "format/hf/tokenizer_json.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {
void check(bool ok) {
    if (!ok) __builtin_trap();
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static bool quiet = (lowbit::set_log_level(lowbit::LogLevel::kQuiet), true);
    (void)quiet;
    // The input is split at the first NUL: tokenizer.json, then an optional tokenizer_config.json.
    const std::string all(reinterpret_cast<const char*>(data), size);
    const size_t nul = all.find('\0');
    const std::string tok_json = all.substr(0, nul);
    const std::string cfg_json = nul == std::string::npos ? std::string() : all.substr(nul + 1);
    auto v = lowbit::hf::parse_tokenizer_json(tok_json, cfg_json);
    if (!v.ok()) {
        check(!v.error().message.empty());
        return 0;
    }
    const auto n = static_cast<int64_t>(v->tokens.size());
    check(v->tokens.size() <= size + 4096); // every id maps to an entry of the input, up to 4096 gaps
    check(v->token_types.empty() || v->token_types.size() == v->tokens.size());
    for (int64_t id : {v->bos_id, v->eos_id, v->unk_id, v->pad_id}) check(id >= -1 && id < n);
    return 0;
}
