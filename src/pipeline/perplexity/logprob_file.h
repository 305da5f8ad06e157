// SPDX-License-Identifier: MIT
// The KL-divergence base file: a base model's log-probabilities for the scored tokens of every chunk of the
// llama.cpp perplexity protocol, quantized to uint16 per vocabulary entry, plus the token stream itself so a
// later run (e.g. of a quantized model) is evaluated on exactly the same tokens.
//
// Layout (little-endian), version 1:
//   offset 0   char[8]  magic "LBLOGPRB"
//          8   u32      version (1)
//         12   u32      n_ctx        tokens per chunk
//         16   u32      n_vocab
//         20   u32      n_chunk
//         24   u32      first        = n_ctx / 2; rows per chunk = n_ctx - 1 - first
//         28   i32      bos_id       BOS written over each chunk's first token when evaluating; -1 = none
//         32   i32      tokens[n_chunk * n_ctx]   original tokens (before the BOS replacement)
//   then n_chunk * (n_ctx - 1 - first) rows, chunk-major; row r of a chunk holds the distribution predicted
//   at chunk position first + r (for the token at first + r + 1) as packed_row_u16(n_vocab) uint16 slots:
//   f32 scale, f32 min_log_prob, u16 code[n_vocab] (+ one u16 of padding when n_vocab is odd);
//   log p[i] = scale * code[i] + min_log_prob (log_softmax.h).
#pragma once

#include "core/error.h"
#include "core/file.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lowbit::pipeline {

struct LogProbFileHeader {
    int64_t n_ctx = 0;
    int64_t n_vocab = 0;
    int64_t n_chunk = 0;
    int32_t bos_id = -1;
    int64_t first() const { return n_ctx / 2; }
    int64_t rows_per_chunk() const { return n_ctx - 1 - first(); }
};

inline constexpr char kLogProbMagic[8] = {'L', 'B', 'L', 'O', 'G', 'P', 'R', 'B'};
inline constexpr uint32_t kLogProbVersion = 1;
inline constexpr uint64_t kLogProbHeaderBytes = 32;

// Streams rows into a temporary file beside `path`; commit() renames it into place once every row is in.
class LogProbWriter {
  public:
    // tokens: [n_chunk * n_ctx].
    static Result<std::unique_ptr<LogProbWriter>> create(const std::string& path, const LogProbFileHeader& header,
                                                         std::span<const int32_t> tokens);
    // Packs one row of logits [n_vocab] (see log_softmax.h). Rows must come in file order.
    Status write_row(std::span<const float> logits);
    // Packs n consecutive rows ([n, n_vocab]) on the global thread pool, then writes them in order.
    Status write_rows(std::span<const float> logits);
    // kInternal if fewer rows than the header promises were written.
    Status commit();
    const LogProbFileHeader& header() const { return header_; }

  private:
    LogProbWriter() = default;
    std::unique_ptr<AtomicWriter> out_;
    LogProbFileHeader header_;
    std::vector<uint16_t> row_;
    std::vector<uint16_t> batch_; // scratch for write_rows
    int64_t n_rows_written_ = 0;
};

// Maps a base file read-only after validating the magic, version, counts, exact file size and token ids.
class LogProbReader {
  public:
    static Result<LogProbReader> open(const std::string& path);
    const LogProbFileHeader& header() const { return header_; }
    std::span<const int32_t> tokens() const { return tokens_; } // [n_chunk * n_ctx]
    // Packed row r (0 <= r < rows_per_chunk) of chunk c: [packed_row_u16(n_vocab)] uint16.
    const uint16_t* row(int64_t chunk, int64_t r) const;
    const std::string& path() const { return path_; }

  private:
    std::shared_ptr<MappedFile> file_;
    std::string path_;
    LogProbFileHeader header_;
    std::vector<int32_t> tokens_;
    const uint8_t* rows_ = nullptr;
};

} // namespace lowbit::pipeline
