// SPDX-License-Identifier: MIT
// TensorView helpers.
#include "core/tensor.h"

#include "core/check.h"

namespace lowbit {

std::string Shape::to_string() const {
    std::string s = "[";
    for (int i = 0; i < n_dims; ++i) {
        if (i) s += ", ";
        s += std::to_string(dims[static_cast<size_t>(i)]);
    }
    return s + "]";
}

TensorView TensorView::contiguous(void* data, DType dtype, const Shape& shape) {
    TensorView v;
    v.data = data;
    v.dtype = dtype;
    v.shape = shape;
    int64_t stride = 0;
    for (int i = shape.n_dims - 1; i >= 0; --i) {
        if (i == shape.n_dims - 1) {
            v.strides_bytes[static_cast<size_t>(i)] = dtype_block_bytes(dtype); // per block along the last dim
            stride = shape[i] / dtype_block_elems(dtype) * dtype_block_bytes(dtype);
        } else {
            v.strides_bytes[static_cast<size_t>(i)] = stride;
            stride *= shape[i];
        }
    }
    return v;
}

uint64_t TensorView::n_bytes() const {
    const int64_t be = dtype_block_elems(dtype);
    LOWBIT_CHECK(shape.n_cols() % be == 0);
    return static_cast<uint64_t>(shape.n_rows()) * static_cast<uint64_t>(shape.n_cols() / be) *
           static_cast<uint64_t>(dtype_block_bytes(dtype));
}

bool TensorView::is_contiguous() const {
    if (shape.n_dims <= 1) return true;
    const TensorView c = contiguous(data, dtype, shape);
    for (int i = 0; i < shape.n_dims; ++i)
        if (c.strides_bytes[static_cast<size_t>(i)] != strides_bytes[static_cast<size_t>(i)]) return false;
    return true;
}

} // namespace lowbit
