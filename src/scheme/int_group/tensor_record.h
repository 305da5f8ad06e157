// SPDX-License-Identifier: MIT
// TensorRecord: one serialized tensor of a multi-tensor scheme (NF4 + absmax + quant state, HQQ W_q + scale +
// zero + meta, int groups + scales). A scheme turns its struct into records and back; format/ writers only
// prepend the module prefix ("model.layers.0.mlp.down_proj.") and copy the bytes.
// Lives here because int_group is the first multi-tensor scheme; it has no dependency on int_group itself.
#pragma once

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::scheme {

struct TensorRecord {
    std::string suffix;         // name after the module prefix: "weight", "weight.absmax", "W_q", "scale"
    DType dtype = DType::kU8;   // plain element type (F32, F16, I8, U8, I32, I64)
    Shape shape;                // row-major; shape {} (n_dims 0) is a scalar
    std::vector<uint8_t> bytes; // little-endian, contiguous, exactly n_elems * element size

    template <class T>
    static TensorRecord from_values(std::string suffix, DType dtype, Shape shape, const std::vector<T>& values) {
        TensorRecord r{std::move(suffix), dtype, shape, std::vector<uint8_t>(values.size() * sizeof(T))};
        if (!values.empty()) std::memcpy(r.bytes.data(), values.data(), r.bytes.size());
        return r;
    }
    // Copies the bytes out as T values (the caller has checked dtype and size).
    template <class T> std::vector<T> values() const {
        std::vector<T> v(bytes.size() / sizeof(T));
        if (!v.empty()) std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
        return v;
    }
};

// nullptr when no record has this suffix.
const TensorRecord* find_record(std::span<const TensorRecord> records, std::string_view suffix);

// The record `suffix`, checked to have `dtype` and `n_elems` elements (n_elems < 0: any count).
// kBadInput names the record, the expectation and what was found.
Result<const TensorRecord*> require_record(std::span<const TensorRecord> records, std::string_view suffix, DType dtype,
                                           int64_t n_elems);
// The same, checked to have exactly `shape` (the layout the writing library uses): a tensor reshaped to another
// shape of the same byte count is a different layout and is refused, not read by its bytes.
Result<const TensorRecord*> require_record(std::span<const TensorRecord> records, std::string_view suffix, DType dtype,
                                           const Shape& shape);

// Total payload bytes of all records.
uint64_t records_bytes(std::span<const TensorRecord> records);

} // namespace lowbit::scheme
