// SPDX-License-Identifier: MIT
// TensorStore: the read side every model file format offers to the rooms above — a list of named tensors
// and their bytes, memory-mapped (never copied). Implemented by safetensors (single file or sharded index)
// and GGUF readers. Names are the file's own names; hf/names.h maps HF <-> GGUF names.
// Shapes are row-major (PyTorch order); GGUF's ne[] is reversed by its reader.
// Thread-safety: all const methods are safe to call concurrently. Lifetime: views stay valid while the
// store lives.
#pragma once

#include "core/error.h"
#include "core/file.h"
#include "core/tensor.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::format {

struct TensorInfo {
    std::string name;
    DType dtype = DType::kF32;
    Shape shape;               // row-major
    uint64_t offset_bytes = 0; // absolute offset in its file
    uint64_t n_bytes = 0;
    int file_index = 0; // which file of a sharded store
};

// Metadata values of a file (GGUF KV pairs, safetensors __metadata__). Kept as JSON-like variants so that
// formats carry them without interpreting them.
class TensorStore {
  public:
    virtual ~TensorStore() = default;
    virtual const std::vector<TensorInfo>& tensors() const = 0;
    // nullptr if absent.
    virtual const TensorInfo* find(const std::string& name) const = 0;
    // View of a tensor's bytes; the error names the tensor when it is absent.
    virtual Result<TensorView> view(const std::string& name) const = 0;
    // Paths of the files behind the store (1 for GGUF / single safetensors).
    virtual std::vector<std::string> paths() const = 0;
    // Hint that the caller is done with `name`'s bytes: a file-mapped store drops its pages from memory (a later
    // view reads them back from the file). Views stay valid. Default: nothing.
    virtual void release(const std::string& name) const { (void)name; }
};

} // namespace lowbit::format
