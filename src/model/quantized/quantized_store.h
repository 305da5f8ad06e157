// SPDX-License-Identifier: MIT
// QuantizedStore: the TensorStore a quantized Hugging Face directory presents to bind_weights. It wraps the
// file's store and replaces each quantized Linear's records (NF4 absmax/quant_state, HQQ W_q/scale/zero, ...)
// by one tensor "<module>.weight" that the kernels can multiply by (owned here): 4-bit layouts repacked into
// packed4 blocks (repack.h), dense f32 dequantized once at load for the rest, or, for LLM.int8, the int8 weight +
// SCB as they are (dispatched to the decomposed matmul).
// Tensors the loader does not touch (embeddings, norms, lm_head) are the file's own mapped views.
#pragma once

#include "core/error.h"
#include "format/tensor_store.h"

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace lowbit::model::quantized {

class QuantizedStore final : public format::TensorStore {
  public:
    explicit QuantizedStore(std::shared_ptr<const format::TensorStore> base);

    const format::TensorStore& base() const { return *base_; }
    // Drops a file tensor from the presented list (a consumed record).
    void hide(const std::string& name);
    // Presents `bytes` (contiguous rows of `dtype`: dtype_row_bytes(dtype, shape's last dim) * rows) as tensor
    // `name`, replacing a file tensor of that name if any.
    void put(const std::string& name, DType dtype, const Shape& shape, std::vector<uint8_t> bytes);
    // Rebuilds the presented list; call after the last hide/put.
    void finalize();

    const std::vector<format::TensorInfo>& tensors() const override { return infos_; }
    const format::TensorInfo* find(const std::string& name) const override;
    Result<TensorView> view(const std::string& name) const override;
    std::vector<std::string> paths() const override { return base_->paths(); }

  private:
    std::shared_ptr<const format::TensorStore> base_;
    std::set<std::string> hidden_;
    std::map<std::string, std::vector<uint8_t>> owned_;
    std::map<std::string, format::TensorInfo> owned_infos_;
    std::vector<format::TensorInfo> infos_;
    std::unordered_map<std::string, size_t> index_;
};

} // namespace lowbit::model::quantized
