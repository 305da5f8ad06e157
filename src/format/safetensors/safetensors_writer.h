// SPDX-License-Identifier: MIT
// safetensors writer: tensors (bytes in memory or produced on demand, for streaming), __metadata__, optional
// sharding by a byte limit (model-00001-of-00003.safetensors + model.safetensors.index.json).
// Layout: header JSON padded with spaces to a multiple of 8 bytes (as the Rust crate does); tensors are laid
// out in name order (the crate sorts by dtype alignment, then name; readers do not care, and name order keeps
// shards predictable). Every file is written through AtomicWriter (temp + rename).
#pragma once

#include "core/error.h"
#include "core/tensor.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace lowbit::safetensors {

// Receives the bytes of one tensor, possibly in several chunks.
using ByteSink = std::function<Status(const void* data, uint64_t n_bytes)>;
// Produces exactly the tensor's bytes into the sink (called once, when the tensor is written).
using ByteProducer = std::function<Status(const ByteSink& sink)>;

struct TensorToWrite {
    std::string name;
    DType dtype = DType::kF32; // a plain type with a safetensors name
    Shape shape;
    const void* data = nullptr; // n_elems * elem size bytes, or null when `produce` is set
    ByteProducer produce;
};

struct WriteOptions {
    std::map<std::string, std::string> metadata; // __metadata__ (omitted when empty)
    uint64_t max_shard_bytes = 0;                // 0: one file; else shard when the tensor bytes exceed it
};

// Writes `tensors` to `path` (a .safetensors file name). When sharding is needed, writes
// <dir>/<stem>-0000i-of-0000n.safetensors and <dir>/<stem>.safetensors.index.json instead, where `path` is
// <dir>/<stem>.safetensors. Returns the written paths (index last). A tensor larger than the limit gets a shard
// of its own. Errors: kUsage (duplicate/empty names, dtype without a safetensors name), kIo.
Result<std::vector<std::string>> write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                                                   const WriteOptions& options = {});

} // namespace lowbit::safetensors
