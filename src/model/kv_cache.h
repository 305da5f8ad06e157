// SPDX-License-Identifier: MIT
// KvCache: keys and values of every layer for up to n_seq sequences (slots) of n_ctx positions each — the
// runtime's memory of what each sequence has seen. Rows are stored in f32, f16 (the default of sessions) or
// q8_0 (blocks of 32, head_dim a multiple of 32); kernel::kv_attention reads them in place.
// Layout: k, v: [n_layers, n_seq, n_ctx, kv_dim] of `type`, kv_dim = n_kv_heads * head_dim.
// Slots are independent: each has its own length (positions [0, seq_len) hold valid rows); clear, truncate and
// copy_prefix (a shared system prompt evaluated once, then copied into other slots) act on one slot.
// Memory: allocated once at create, never zero-filled (pages become resident as rows are written), and checked
// against the machine's physical memory: a size that cannot fit is an error naming the bytes it needs.
// Thread-safety: none; the owner (a runtime::Session) serializes forwards.
#pragma once

#include "core/dtype.h"
#include "core/error.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::model {

struct KvCacheOptions {
    int64_t n_ctx = 0;        // positions per slot
    int64_t n_seq = 1;        // slots
    DType type = DType::kF32; // kF32, kF16 or kQ8_0
    uint64_t max_bytes = 0;   // refuse larger caches; 0: the machine's physical memory
    // false: bookkeeping only (slot lengths, clear/truncate) — the rows live elsewhere (a device engine's cache);
    // no host memory is allocated and the row accessors must not be used.
    bool host_rows = true;
};

class KvCache {
  public:
    KvCache() = default;
    // kUsage for n_ctx/n_seq < 1, an uncacheable type or q8_0 with head_dim % 32 != 0; kOutOfMemory ("needs N GiB",
    // with the sizes) when k + v overflow, exceed max_bytes or cannot be allocated.
    static Result<KvCache> create(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, const KvCacheOptions& o);

    int64_t n_ctx() const { return n_ctx_; }
    int64_t n_seq() const { return n_seq_; }
    int64_t n_layers() const { return n_layers_; }
    int64_t kv_dim() const { return kv_dim_; }
    DType type() const { return type_; }
    uint64_t row_bytes() const { return row_bytes_; }
    uint64_t bytes() const { return 2 * layer_bytes_ * uint64_t(n_layers_); } // k + v (of the rows, wherever they are)
    bool host_rows() const { return k_ != nullptr || bytes() == 0; }

    // Positions [0, seq_len(s)) of slot s hold rows.
    int64_t seq_len(int64_t s) const { return seq_len_[size_t(s)]; }
    void set_seq_len(int64_t s, int64_t n) { seq_len_[size_t(s)] = n; }
    void clear(int64_t s) { seq_len_[size_t(s)] = 0; }
    void clear_all();
    // Keeps positions [0, n) of slot s (no-op when n >= seq_len).
    void truncate(int64_t s, int64_t n);
    // Copies positions [0, n) of slot src into slot dst (every layer) and sets dst's length to n.
    // kUsage when a slot is out of range or n > seq_len(src).
    Status copy_prefix(int64_t src, int64_t dst, int64_t n);

    // One layer's keys / values: [n_seq, n_ctx, kv_dim] of type().
    uint8_t* k_layer(int64_t layer) { return k_.get() + uint64_t(layer) * layer_bytes_; }
    uint8_t* v_layer(int64_t layer) { return v_.get() + uint64_t(layer) * layer_bytes_; }
    uint8_t* k_row(int64_t layer, int64_t s, int64_t pos) { return k_layer(layer) + row_offset(s, pos); }
    uint8_t* v_row(int64_t layer, int64_t s, int64_t pos) { return v_layer(layer) + row_offset(s, pos); }
    // Stores n rows of f32 keys and values [n, kv_dim] at (layer, slot, pos), converting to type().
    void store(int64_t layer, int64_t s, int64_t pos, const float* k, const float* v, int64_t n = 1);

  private:
    uint64_t row_offset(int64_t s, int64_t pos) const {
        return (uint64_t(s) * uint64_t(n_ctx_) + uint64_t(pos)) * row_bytes_;
    }

    int64_t n_ctx_ = 0, n_seq_ = 0, n_layers_ = 0, kv_dim_ = 0;
    DType type_ = DType::kF32;
    uint64_t row_bytes_ = 0, layer_bytes_ = 0;
    std::shared_ptr<uint8_t[]> k_, v_; // shared: a KvCache is movable and cheap to hand around
    std::vector<int64_t> seq_len_;
};

// "f32" | "f16" | "q8_0" (case-insensitive) -> the cache dtype; kUsage naming the choices otherwise.
Result<DType> parse_cache_type(const std::string& name);

} // namespace lowbit::model
