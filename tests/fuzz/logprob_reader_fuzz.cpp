// SPDX-License-Identifier: MIT
// fuzz-link: lowbit_pipeline
// libFuzzer harness for the KL-divergence base file reader (perplexity --kl-divergence, issue #15): any bytes must
// open as a valid log-prob file or fail with a non-empty kBadInput — never crash, over-allocate, read outside the
// mapping or trip UBSan. A file that opens is walked completely: every token id inside the vocabulary, every row's
// header and codes readable.
#include "core/log.h"
#include "fuzz/fuzz_file.h"
#include "pipeline/perplexity/log_softmax.h"
#include "pipeline/perplexity/logprob_file.h"

#include <cmath>

using lowbit::fuzz::check;
namespace p = lowbit::pipeline;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    lowbit::set_log_level(lowbit::LogLevel::kQuiet);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = lowbit::fuzz::write_input(data, size);
    auto r = p::LogProbReader::open(path);
    if (!r.ok()) {
        check(r.error().code == lowbit::ErrorCode::kBadInput && !r.error().message.empty());
        return 0;
    }
    const p::LogProbFileHeader& h = r->header();
    check(h.n_ctx >= 3 && h.n_vocab >= 1 && h.n_chunk >= 1);
    check(int64_t(r->tokens().size()) == h.n_ctx * h.n_chunk);
    for (int32_t t : r->tokens()) check(t >= 0 && t < h.n_vocab);
    uint64_t sink = 0;
    for (int64_t c = 0; c < h.n_chunk; ++c)
        for (int64_t row = 0; row < h.rows_per_chunk(); ++row) {
            const uint16_t* q = r->row(c, row);
            const p::PackedRowHeader ph = p::packed_row_header(q);
            sink += std::isfinite(ph.scale) ? 1 : 0;
            const uint16_t* codes = p::packed_row_codes(q);
            sink += codes[0] + codes[h.n_vocab - 1]; // first and last code: ASan checks both are mapped
        }
    return sink == 0xFFFFFFFFFFull ? 1 : 0;
}
