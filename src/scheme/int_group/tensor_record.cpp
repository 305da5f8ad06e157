// SPDX-License-Identifier: MIT
// TensorRecord lookups with checked sizes.
#include "scheme/int_group/tensor_record.h"

#include <fmt/format.h>

namespace lowbit::scheme {

const TensorRecord* find_record(std::span<const TensorRecord> records, std::string_view suffix) {
    for (const TensorRecord& r : records)
        if (r.suffix == suffix) return &r;
    return nullptr;
}

Result<const TensorRecord*> require_record(std::span<const TensorRecord> records, std::string_view suffix, DType dtype,
                                           int64_t n_elems) {
    const TensorRecord* r = find_record(records, suffix);
    if (!r) return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}' is missing", suffix));
    if (r->dtype != dtype)
        return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}' should be {} but is {}", suffix,
                                                            dtype_name(dtype), dtype_name(r->dtype)));
    const auto elem_bytes = uint64_t(dtype_block_bytes(dtype));
    if (r->shape.n_elems() < 0 || uint64_t(r->shape.n_elems()) * elem_bytes != r->bytes.size())
        return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}' has shape {} but {} bytes of {}", suffix,
                                                            r->shape.to_string(), r->bytes.size(), dtype_name(dtype)));
    if (n_elems >= 0 && r->shape.n_elems() != n_elems)
        return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}' should have {} elements but has {} (shape {})",
                                                            suffix, n_elems, r->shape.n_elems(), r->shape.to_string()));
    return r;
}

Result<const TensorRecord*> require_record(std::span<const TensorRecord> records, std::string_view suffix, DType dtype,
                                           const Shape& shape) {
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* r, require_record(records, suffix, dtype, shape.n_elems()));
    if (r->shape != shape)
        return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}' should have shape {} but has {}", suffix,
                                                            shape.to_string(), r->shape.to_string()));
    return r;
}

uint64_t records_bytes(std::span<const TensorRecord> records) {
    uint64_t n = 0;
    for (const TensorRecord& r : records) n += r.bytes.size();
    return n;
}

} // namespace lowbit::scheme
