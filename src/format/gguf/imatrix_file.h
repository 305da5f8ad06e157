// SPDX-License-Identifier: MIT
// llama.cpp's GGUF importance-matrix files (tools/imatrix, `llama-imatrix -o x.gguf`): general.type "imatrix",
// imatrix.datasets (string array), imatrix.chunk_count / imatrix.chunk_size (u32), and per weight tensor
// `<name>.in_sum2` (f32 [ne0 * n_mat], summed squared input activations per column) + `<name>.counts`
// (f32 [n_mat], tokens seen). Format only: reading, validating and writing; the arithmetic is quantize/'s.
#pragma once

#include "core/error.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lowbit::gguf {

struct ImatrixEntry {
    std::vector<float> in_sum2; // [ne0 * n_mat]
    std::vector<float> counts;  // [n_mat]
};

struct ImatrixData {
    std::vector<std::string> datasets;
    int64_t chunk_count = 0;
    int64_t chunk_size = 0;
    std::map<std::string, ImatrixEntry> entries; // by weight name ("blk.0.attn_q.weight"), sorted
};

// Reads and validates `path`. Errors (messages start with the path): kIo (cannot open), kBadInput (not a GGUF
// imatrix: general.type other than "imatrix", tensors that are not f32, an in_sum2 without counts or the
// reverse, sums not a multiple of the counts, no entries at all).
Result<ImatrixData> read_imatrix(const std::string& path);

// Writes `data` as llama-imatrix does (keys in its order, tensors sorted by name, in_sum2 as [ne0, n_mat] and
// counts as [1, n_mat] so 1-matrix entries are 1-D), atomically.
Status write_imatrix(const std::string& path, const ImatrixData& data);

} // namespace lowbit::gguf
