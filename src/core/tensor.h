// SPDX-License-Identifier: MIT
// TensorView: a non-owning view of tensor memory. Shapes are in row-major (PyTorch/numpy) order:
// shape[0] is the outermost dimension, shape[n_dims-1] the contiguous one. (GGUF's ne[] is the reverse;
// format/gguf converts at the boundary.) Quantized dtypes: the last dimension counts elements, and must
// be a multiple of the block size; strides are in bytes.
#pragma once

#include "core/dtype.h"

#include <array>
#include <cstdint>
#include <string>

namespace lowbit {

inline constexpr int kMaxDims = 4;

struct Shape {
    std::array<int64_t, kMaxDims> dims{};
    int n_dims = 0;

    Shape() = default;
    Shape(std::initializer_list<int64_t> d) {
        for (int64_t x : d) dims[static_cast<size_t>(n_dims++)] = x;
    }
    int64_t operator[](int i) const { return dims[static_cast<size_t>(i)]; }
    int64_t& operator[](int i) { return dims[static_cast<size_t>(i)]; }
    int64_t n_elems() const {
        int64_t n = 1;
        for (int i = 0; i < n_dims; ++i) n *= dims[static_cast<size_t>(i)];
        return n;
    }
    // Rows = product of all but the last dim; cols = last dim (1-D tensors: 1 row).
    int64_t n_cols() const { return n_dims == 0 ? 1 : dims[static_cast<size_t>(n_dims - 1)]; }
    int64_t n_rows() const { return n_cols() == 0 ? 0 : n_elems() / n_cols(); }
    bool operator==(const Shape& o) const {
        if (n_dims != o.n_dims) return false;
        for (int i = 0; i < n_dims; ++i)
            if (dims[static_cast<size_t>(i)] != o.dims[static_cast<size_t>(i)]) return false;
        return true;
    }
    std::string to_string() const; // "[4096, 11008]"
};

struct TensorView {
    void* data = nullptr;
    DType dtype = DType::kF32;
    Shape shape;
    std::array<int64_t, kMaxDims> strides_bytes{}; // contiguous unless a view says otherwise

    static TensorView contiguous(void* data, DType dtype, const Shape& shape);
    int64_t n_elems() const { return shape.n_elems(); }
    // Bytes of the whole tensor when contiguous (block types: rows * row bytes).
    uint64_t n_bytes() const;
    bool is_contiguous() const;
    template <class T> T* as() const { return static_cast<T*>(data); }
};

} // namespace lowbit
