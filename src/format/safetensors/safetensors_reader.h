// SPDX-License-Identifier: MIT
// safetensors reader: one file or a sharded set (model.safetensors.index.json + weight_map), memory-mapped,
// exposed as a format::TensorStore. Every header is validated before any pointer is trusted.
// Goals: all plain dtypes (F64..BOOL), __metadata__, messages that name the file and the tensor.
// Non-goals: F8 types (rejected as unsupported), ranks above 4 (core Shape limit), writing (safetensors_writer.h).
#pragma once

#include "core/error.h"
#include "core/file.h"
#include "format/tensor_store.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace lowbit::safetensors {

// Largest header accepted (the Rust crate's MAX_HEADER_SIZE).
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// The validated header of one file. TensorInfo offsets are absolute (8 + header length + data offset).
struct Header {
    std::vector<format::TensorInfo> tensors; // in data-offset order
    std::map<std::string, std::string> metadata;
    uint64_t data_start = 0; // 8 + header length
};

// Parses and validates the header of a whole safetensors file held in `data[0..size)`. `label` names the
// file in messages. Checks: header length bounded (<= 100 MB and <= file), JSON well-formed, every entry has
// dtype/shape/data_offsets, known dtype, size == product(shape) * elem size (overflow-checked), offsets in
// bounds, no overlap, no hole, data ends exactly at the end of the file (as the Rust crate requires).
// Errors: kBadInput (malformed), kUnsupported (F8 dtypes, rank > 4).
Result<Header> parse_header(const uint8_t* data, uint64_t size, const std::string& label, int file_index = 0);

// A store over one or more safetensors files. Thread-safe for concurrent const use.
class Store : public format::TensorStore {
  public:
    // `path`: a .safetensors file, a model.safetensors.index.json, or a directory holding either
    // (the index wins when both exist).
    static Result<std::unique_ptr<Store>> open(const std::string& path);
    // Single file from an in-memory buffer (not copied; must outlive the store). Used by the fuzzer and tests.
    static Result<std::unique_ptr<Store>> from_buffer(const uint8_t* data, uint64_t size,
                                                      const std::string& label = "<buffer>");

    const std::vector<format::TensorInfo>& tensors() const override { return tensors_; }
    const format::TensorInfo* find(const std::string& name) const override;
    Result<TensorView> view(const std::string& name) const override;
    std::vector<std::string> paths() const override { return paths_; }
    void release(const std::string& name) const override; // mapped files only (not from_buffer)

    // __metadata__ of the first file (single file) or the union over shards (first value wins).
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    // The index's "metadata" object as strings (sharded only; e.g. "total_size"), else empty.
    const std::map<std::string, std::string>& index_metadata() const { return index_metadata_; }

  private:
    Store() = default;
    static Result<std::unique_ptr<Store>> open_file(const std::string& path);
    static Result<std::unique_ptr<Store>> open_index(const std::string& index_path);
    Status add_file(const uint8_t* data, uint64_t size, const std::string& label, int file_index);

    std::vector<std::shared_ptr<MappedFile>> files_;
    std::vector<const uint8_t*> bases_; // base pointer per file
    std::vector<std::string> paths_;
    std::vector<format::TensorInfo> tensors_;
    std::unordered_map<std::string, size_t> by_name_;
    std::map<std::string, std::string> metadata_, index_metadata_;
};

} // namespace lowbit::safetensors
