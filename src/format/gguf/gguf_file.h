// SPDX-License-Identifier: MIT
// gguf::File: a validated, memory-mapped GGUF v2/v3 file (ANCHORS.md §3.6) — its metadata KVs in file order and
// its tensors as a format::TensorStore. Everything is checked before a pointer is formed (DESIGN.md §3.6):
// magic, version, counts bounded by the file size, string lengths, UTF-8, n_dims, dims, ggml type, block
// multiples, alignment, offsets inside the file, overlaps, duplicate names and keys.
// Errors: kBadInput (malformed/truncated; truncation messages contain "truncated"), kUnsupported (version 1
// or > 3, big-endian, unknown ggml type). Thread-safety: immutable after open(); all const methods are safe.
// Alignment: general.alignment may be any power of two (1 included, as ggml accepts), so a tensor can start at an
// address its element or block type may not be read from (an f32 at an odd address, a Q4_0 block's f16 scale):
// such tensors — only those — are copied once at open into aligned memory, and tensor_data()/view() return the copy,
// so no consumer (kernels, dequantizers, quantizers) ever reads a misaligned 2/4/8-byte value.
#pragma once

#include "core/error.h"
#include "core/file.h"
#include "format/gguf/gguf_value.h"
#include "format/tensor_store.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::gguf {

inline constexpr uint32_t kMagic = 0x46554747; // "GGUF" read as a little-endian uint32
inline constexpr uint32_t kVersion = 3;
inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr uint64_t kMaxKeyBytes = 65535;
inline constexpr uint64_t kMaxTensorNameBytes = 63; // ggml's GGML_MAX_NAME (64) minus the NUL
inline constexpr int kMaxArrayDepth = 8;            // nested arrays deeper than this are rejected
inline constexpr std::string_view kAlignmentKey = "general.alignment";

struct KeyValue {
    std::string key;
    Value value;
};

class File final : public format::TensorStore {
  public:
    // Maps and validates `path`. The error message starts with the path.
    static Result<std::shared_ptr<File>> open(const std::string& path);
    // Validates an in-memory image (fuzzing, tests). Does not copy: `bytes` must outlive the File.
    static Result<std::shared_ptr<File>> open_memory(std::span<const uint8_t> bytes,
                                                     const std::string& name = "<memory>");

    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    // Absolute offset of the tensor data section (aligned end of the tensor infos).
    uint64_t data_offset() const { return data_offset_; }
    uint64_t file_size() const { return size_; }
    const std::string& path() const { return name_; }
    const uint8_t* data() const { return data_; }

    // Metadata, in file order.
    const std::vector<KeyValue>& kvs() const { return kvs_; }
    // nullptr if absent.
    const Value* get(std::string_view key) const;
    bool has(std::string_view key) const { return get(key) != nullptr; }

    // Optional lookups: nullopt when the key is absent OR has another type (see the lookup_* forms to tell apart).
    std::optional<std::string> get_string(std::string_view key) const;
    std::optional<int64_t> get_int(std::string_view key) const;   // any integer type fitting int64
    std::optional<uint64_t> get_uint(std::string_view key) const; // any integer type, value >= 0
    std::optional<double> get_float(std::string_view key) const;  // f32/f64 or an integer
    std::optional<bool> get_bool(std::string_view key) const;
    const Array* get_array(std::string_view key) const;

    // lookup_*: Ok(nullopt) when absent, an error (kBadInput naming the key, expected and actual type) when
    // present with the wrong type. require_*: an error also when absent.
    Result<std::optional<std::string>> lookup_string(std::string_view key) const;
    Result<std::optional<int64_t>> lookup_int(std::string_view key) const;
    Result<std::optional<double>> lookup_float(std::string_view key) const;
    Result<std::optional<bool>> lookup_bool(std::string_view key) const;
    // Array lookup with an optional element type check (nullopt = any element type).
    Result<const Array*> lookup_array(std::string_view key, std::optional<ValueType> elem_type = std::nullopt) const;
    Result<std::string> require_string(std::string_view key) const;
    Result<int64_t> require_int(std::string_view key) const;
    Result<double> require_float(std::string_view key) const;

    // TensorStore. Tensor order is file order; shapes are row-major (reverse of GGUF ne[]).
    const std::vector<format::TensorInfo>& tensors() const override { return tensors_; }
    const format::TensorInfo* find(const std::string& name) const override;
    Result<TensorView> view(const std::string& name) const override;
    std::vector<std::string> paths() const override { return {name_}; }
    // The tensor's bytes (n_bytes long): inside the mapping, or its aligned copy (see Alignment above).
    const uint8_t* tensor_data(const format::TensorInfo& t) const;
    // Bytes copied at open because their tensors were misaligned for their type (0 for ordinary files).
    uint64_t realigned_bytes() const { return realigned_bytes_; }
    // Drops the mapped pages of bytes [offset, offset + n_bytes) of tensor t from memory (MappedFile::release):
    // a streaming reader's hint that it is done with them. No-op for realigned copies and in-memory files.
    void release_bytes(const format::TensorInfo& t, uint64_t offset, uint64_t n_bytes) const;
    void release(const std::string& name) const override;
    // The ggml_type id of a tensor as stored.
    int ggml_type(const format::TensorInfo& t) const;

  private:
    friend class Parser;
    File() = default;
    Status parse();

    std::shared_ptr<MappedFile> map_; // null for open_memory
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
    std::string name_;
    uint32_t version_ = 0;
    uint64_t alignment_ = kDefaultAlignment;
    uint64_t data_offset_ = 0;
    std::vector<KeyValue> kvs_;
    std::map<std::string, size_t, std::less<>> kv_index_;
    std::vector<format::TensorInfo> tensors_;
    std::vector<int> ggml_types_; // parallel to tensors_
    std::map<std::string, size_t, std::less<>> tensor_index_;
    // Aligned copies of misaligned tensors, by absolute offset (tensors never overlap, so the offset is a key).
    std::map<uint64_t, std::vector<uint64_t>> realigned_;
    uint64_t realigned_bytes_ = 0;
};

} // namespace lowbit::gguf
