// SPDX-License-Identifier: MIT
// The input side of `lowbit quantize` to GGUF: an HF folder (seen through convert's plan: GGUF names, Q/K
// permutation, metadata, tokenizer keys, rope_freqs) or a GGUF file (requantize: its KVs and tensors). Both give
// GGUF tensor names, shapes, the mix rules' hparams and each tensor's values as f32, one tensor at a time.
#pragma once

#include "core/error.h"
#include "core/tensor.h"
#include "format/gguf/gguf_writer.h"
#include "quantize/kquant/mix.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lowbit::pipeline {

class GgufQuantSource {
  public:
    virtual ~GgufQuantSource() = default;

    // GGUF names, GGUF dims (ne[0] = row length first) and the stored dtype (f32 for HF folders: the values
    // are read as f32, and tensors the mix leaves alone are written f32, as after `convert --type f32`).
    const std::vector<quantize::kquant::MixTensor>& tensors() const { return tensors_; }
    const quantize::kquant::MixHparams& hparams() const { return hparams_; }

    // Metadata of the output (everything but general.file_type / general.quantization_version, which the
    // caller sets).
    virtual Status set_metadata(gguf::Writer& w) const = 0;
    // Tensor i as f32, [n_elems] in row-major order. Errors name the tensor (e.g. a type with no decoder).
    virtual Status read_f32(size_t i, std::vector<float>& out) const = 0;
    // Streaming (GGUF input): rows [r0, r1) of tensor i (rows of ne[0] values) as f32 into out[(r1 - r0) * ne[0]];
    // returns the index in `out` of the first NaN/Inf, or (r1 - r0) * ne[0] when all are finite. Thread-safe.
    // Sources without it (has_rows() false: HF folders) are read whole with read_f32.
    virtual bool has_rows() const { return false; }
    virtual Result<int64_t> read_rows_f32(size_t i, int64_t r0, int64_t r1, float* out) const;
    // Hint: the caller is done with rows [r0, r1) of tensor i (their mapped pages can leave memory).
    virtual void release_rows(size_t i, int64_t r0, int64_t r1) const { (void)i, (void)r0, (void)r1; }
    // The stored bytes of tensor i when it can be copied unchanged (GGUF input), else an empty span.
    virtual std::span<const uint8_t> raw_bytes(size_t i) const = 0;
    // For a quantized HF folder (read through its dequantized weights): the warning that writing it as `method`
    // compounds the error (or, for f32/f16/bf16, how exact the output is); "" for any other input.
    virtual std::string requantize_warning(const std::string& method) const = 0;

  protected:
    std::vector<quantize::kquant::MixTensor> tensors_;
    quantize::kquant::MixHparams hparams_;
};

// `path`: an HF model folder (config.json; a quantized one is read through its dequantized weights, see
// open_hf_gguf_source) or a .gguf file. Errors: those of the HF/GGUF readers (kIo for a
// missing path, kBadInput for a malformed or truncated file), kBadInput for a GGUF without the hparams the
// mix rules read (<arch>.block_count, <arch>.attention.head_count).
Result<std::unique_ptr<GgufQuantSource>> open_gguf_quant_source(const std::string& path);

} // namespace lowbit::pipeline
