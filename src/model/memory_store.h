// SPDX-License-Identifier: MIT
// MemoryStore: a format::TensorStore over owned buffers — for tests, benchmarks and tools that build models in
// memory — plus make_synthetic_model(), a seeded random Llama-family model of any size and weight dtype.
#pragma once

#include "core/error.h"
#include "format/hf/config.h"
#include "format/tensor_store.h"
#include "model/arch/arch.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::model {

class MemoryStore final : public format::TensorStore {
  public:
    // Stores `values` ([shape.n_rows(), shape.n_cols()] f32) encoded row by row as `dtype` (scheme table).
    // Errors: kUnsupported when dtype has no quantize_row; kBadInput when sizes disagree.
    Status add(const std::string& name, DType dtype, const Shape& shape, const std::vector<float>& values);
    // Stores raw bytes as they are (no checks beyond the byte count).
    Status add_raw(const std::string& name, DType dtype, const Shape& shape, std::vector<uint8_t> bytes);
    void remove(const std::string& name);

    const std::vector<format::TensorInfo>& tensors() const override { return infos_; }
    const format::TensorInfo* find(const std::string& name) const override;
    Result<TensorView> view(const std::string& name) const override;
    std::vector<std::string> paths() const override { return {"<memory>"}; }

  private:
    void reindex();
    std::map<std::string, std::vector<uint8_t>> bytes_;
    std::vector<format::TensorInfo> infos_;
};

// A seeded random model with the tensors `arch` expects in `source` naming: matrices ~ N(0, 1/sqrt(in)), norm
// weights ~ 1 + N(0, 0.1), biases ~ N(0, 0.1), embeddings ~ N(0, 1). Matrices are stored as `dtype`, 1-D
// tensors as f32. Biases when arch.quirks.qkv_bias or config.attention_bias; lm_head unless tied.
Result<std::shared_ptr<MemoryStore>> make_synthetic_model(const format::ModelConfig& config, const ArchDesc& arch,
                                                          SourceFormat source, DType dtype, uint32_t seed);

} // namespace lowbit::model
