// SPDX-License-Identifier: MIT
// gguf::Writer: builds a GGUF v3 file (ANCHORS.md §3.6) from metadata KVs and tensors, then writes it through
// core's AtomicWriter (temp file + rename). Tensor bytes may come from a buffer, a borrowed pointer or a
// producer callback called once, in order, during write() — so converters can stream huge or quantized
// tensors one at a time without holding them all.
// Layout: header, KVs (insertion order), tensor infos (insertion order), zero padding to `general.alignment`
// (default 32), then each tensor's bytes followed by padding to the alignment (as gguf-py and ggml write).
#pragma once

#include "core/error.h"
#include "core/tensor.h"
#include "format/gguf/gguf_value.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::gguf {

// Receives a piece of a tensor's bytes; returns an error to abort the write.
using ByteSink = std::function<Status(const void* data, uint64_t n_bytes)>;
// Produces exactly the tensor's n_bytes through `sink` (in as many pieces as it likes).
using TensorProducer = std::function<Status(const ByteSink& sink)>;
// Receives the bytes [offset, offset + n_bytes) of a tensor; may be called from several threads at once.
using PositionalSink = std::function<Status(uint64_t offset, const void* data, uint64_t n_bytes)>;
// Produces the tensor's n_bytes through `sink` in pieces of any order that cover them exactly once.
using PositionalProducer = std::function<Status(const PositionalSink& sink)>;

class Writer {
  public:
    // Sets a metadata value. A new key goes last; an existing key keeps its position and gets the new value.
    // Errors (kUsage): empty / over-long / non-UTF-8 key, non-UTF-8 strings, array items of a type other than
    // the array's element type, bools outside 0/1; general.alignment not a power-of-two integer.
    Status set(const std::string& key, Value value);
    const Value* get(const std::string& key) const;
    void remove(const std::string& key);

    // Tensors, in file order. `shape` is row-major; its last dim must be a multiple of the dtype's block size.
    // Errors (kUsage): duplicate / empty / over-long name, bad shape, byte count mismatch; kUnsupported: a
    // dtype GGUF cannot store (u8, bool).
    Status add_tensor(const std::string& name, DType dtype, const Shape& shape, std::vector<uint8_t> bytes);
    // Borrowed bytes: `data` must stay valid until write() returns.
    Status add_tensor_ref(const std::string& name, DType dtype, const Shape& shape, const void* data);
    Status add_tensor_producer(const std::string& name, DType dtype, const Shape& shape, TensorProducer produce);
    // A producer that may write its pieces from several threads, in any order: write() pwrites them in place in
    // the file (no copy of the tensor in memory); write_to / write_to_memory assemble the tensor in a buffer first.
    // Errors as add_tensor; at write time, pieces outside the tensor or a total other than n_bytes are kInternal.
    Status add_tensor_positional(const std::string& name, DType dtype, const Shape& shape, PositionalProducer produce);

    uint64_t alignment() const;
    size_t n_tensors() const { return tensors_.size(); }
    size_t n_kvs() const { return kvs_.size(); }
    // Bytes per tensor the file will hold (without padding), in order.
    uint64_t tensor_bytes(size_t i) const { return tensors_[i].n_bytes; }

    // Writes the file atomically. A producer error aborts the write and leaves no file behind.
    Status write(const std::string& path) const;
    // Same bytes, into memory (tests, fuzz seeds).
    Result<std::vector<uint8_t>> write_to_memory() const;
    // Same bytes, into any sink.
    Status write_to(const ByteSink& out) const;

  private:
    struct PendingTensor {
        std::string name;
        DType dtype;
        Shape shape;
        uint64_t n_bytes = 0;
        std::vector<uint8_t> owned;
        const void* borrowed = nullptr;
        TensorProducer produce;
        PositionalProducer produce_at;
    };
    // write_to's body; `at` (null for write_to) writes positional producers' pieces at an absolute offset of the
    // output after `reserve` has reserved their n_bytes there.
    Status write_impl(const ByteSink& out, const std::function<Status(uint64_t)>* reserve,
                      const std::function<Status(uint64_t, const void*, uint64_t)>* at) const;
    Result<PendingTensor> make_tensor(const std::string& name, DType dtype, const Shape& shape) const;

    std::vector<std::pair<std::string, Value>> kvs_;
    std::map<std::string, size_t> kv_index_;
    std::vector<PendingTensor> tensors_;
    std::map<std::string, size_t> tensor_index_;
};

} // namespace lowbit::gguf
