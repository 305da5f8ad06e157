// SPDX-License-Identifier: MIT
// libFuzzer harness for config.json parsing (issue #15): any text must parse or fail with a non-empty error —
// never crash, throw, allocate from an unchecked count or trip UBSan. A config that parses must satisfy the
// bounds check_model_config promises (so nothing downstream sizes a buffer from an absurd count).
#include "core/log.h"
#include "format/hf/hf_model.h"

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
    // The input is split at the first NUL: config.json, then an optional generation_config.json.
    const std::string all(reinterpret_cast<const char*>(data), size);
    const size_t nul = all.find('\0');
    const std::string config = all.substr(0, nul);
    const std::string generation = nul == std::string::npos ? std::string() : all.substr(nul + 1);
    auto c = lowbit::hf::parse_hf_config_json(config, generation);
    if (!c.ok()) {
        check(!c.error().message.empty());
        return 0;
    }
    namespace f = lowbit::format;
    check(c->n_layers >= 1 && c->n_layers <= f::kMaxLayers);
    check(c->hidden_size >= 1 && c->hidden_size <= f::kMaxHidden);
    check(c->intermediate_size >= 1 && c->intermediate_size <= f::kMaxIntermediate);
    check(c->n_heads >= 1 && c->n_heads <= f::kMaxHeads && c->n_kv_heads >= 1 && c->n_kv_heads <= f::kMaxHeads);
    check(c->head_dim >= 1 && c->head_dim <= f::kMaxHeadDim);
    check(c->vocab_size >= 1 && c->vocab_size <= f::kMaxVocab);
    check(c->max_position_embeddings >= 0 && c->max_position_embeddings <= f::kMaxPositions);
    check(c->rope_scaling.factor > 0);
    return 0;
}
