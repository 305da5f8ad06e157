// SPDX-License-Identifier: MIT
// `lowbit imatrix`: llama-imatrix's importance matrix. The text is tokenized (BOS first when the vocabulary adds
// it), cut into chunks of n_ctx tokens (each chunk's first token replaced by BOS, KV cache cleared per chunk, as
// llama-perplexity), and for every linear weight of every block the squared inputs are summed per input column
// (in_sum2, [n_cols]) with the number of tokens seen (counts). Written as llama.cpp's GGUF imatrix file, with
// GGUF tensor names (blk.N.attn_q.weight ...) whatever the model's source format, so llama-quantize and
// `lowbit quantize --imatrix` can use it. output.weight is skipped unless process_output (llama-imatrix's default).
#pragma once

#include "core/error.h"

#include <cstdint>
#include <string>

namespace lowbit::pipeline {

struct ImatrixOptions {
    std::string model;           // HF folder or .gguf
    std::string text_file;       // calibration text (UTF-8)
    std::string output;          // imatrix .gguf
    int64_t n_ctx = 512;         // tokens per chunk
    int64_t n_chunks = -1;       // < 0: all chunks of the text
    int64_t n_batch = 512;       // tokens per forward call
    int n_threads = 0;           // 0 = all cores
    bool process_output = false; // also collect output.weight (llama-imatrix --process-output)
    bool progress = true;
};

struct ImatrixReport {
    int64_t n_tokens = 0; // tokens of the text
    int64_t n_chunks = 0; // chunks evaluated
    int64_t n_entries = 0;
    double seconds = 0;
};

// Errors: kUsage (n_ctx < 2, n_batch < 1, n_ctx beyond the model), kBadInput (no tokenizer, empty or non-UTF-8
// text, fewer than 2 * n_ctx tokens as llama-imatrix requires), kIo, and the model loader's errors.
Result<ImatrixReport> compute_imatrix(const ImatrixOptions& options);

} // namespace lowbit::pipeline
