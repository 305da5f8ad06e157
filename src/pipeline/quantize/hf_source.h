// SPDX-License-Identifier: MIT
// Input side of the HF-style `lowbit quantize` half: an HF model directory or a GGUF file seen as HF-named
// tensors ("model.layers.0.self_attn.q_proj.weight") that decode to f32 in HF row order (GGUF Q/K rows are
// un-permuted for arch "llama"; GGUF block types are dequantized), plus the config.json to write.
#pragma once

#include "core/error.h"
#include "core/tensor.h"
#include "format/hf/config.h"
#include "format/tensor_store.h"

#include <memory>
#include <string>
#include <vector>

namespace lowbit::pipeline::hfq {

struct SourceTensor {
    std::string name;          // HF name
    std::string store_name;    // the name in the store (GGUF name for GGUF input)
    DType dtype = DType::kF32; // as stored
    Shape shape;               // HF row-major shape
    int64_t permute_heads = 0; // > 0: GGUF Q/K rows (or bias elements) to un-permute with this many heads
};

struct Source {
    format::ModelConfig config;
    std::string dir; // HF directory; empty for GGUF input
    bool is_gguf = false;
    std::shared_ptr<format::TensorStore> store;
    std::vector<SourceTensor> tensors; // store order, rotary inv_freq buffers dropped
    std::string config_json;           // HF: config.json as read; GGUF: synthesized from the metadata
};

// Opens `path` (HF directory or .gguf file). Errors: kBadInput/kUnsupported from the readers; kUnsupported for
// GGUF tensors without an HF name (rope_freqs.weight: Llama-3 rope scaling lowbit cannot express as HF keys).
Result<Source> open_source(const std::string& path);

// True for the Linear weights of decoder layers (q/k/v/o/gate/up/down_proj .weight, 2-D).
bool is_decoder_linear(const SourceTensor& t);

// The whole tensor as f32 in HF order ([shape.n_elems()]), decoded on the global pool.
Result<std::vector<float>> read_f32(const Source& src, const SourceTensor& t);

// True when the stored bytes can be written as they are (plain f32/f16/bf16/f64, no permutation).
bool copies_verbatim(const SourceTensor& t);

// config.json for a ModelConfig (GGUF input): the keys transformers' LlamaConfig/Qwen2Config read.
std::string synthesize_config_json(const format::ModelConfig& c);

} // namespace lowbit::pipeline::hfq
