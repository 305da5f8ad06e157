// SPDX-License-Identifier: MIT
// `lowbit convert`: a Hugging Face model folder (safetensors + config.json [+ tokenizer.json]) -> a GGUF file
// that llama.cpp loads, the way llama.cpp's convert_hf_to_gguf.py writes it: <arch>.* hyper-parameter keys,
// GGUF tensor names, Q/K rows permuted for arch "llama" (not for "qwen2"), 1-D tensors and norms kept F32,
// tied embeddings -> no output.weight, Llama-3 rope scaling -> rope_freqs.weight, tokenizer.ggml.* keys.
// Streams tensor by tensor, row chunk by row chunk: memory stays O(one chunk), never the whole model.
// A quantized folder (bitsandbytes, hqq, gptq, awq, lowbit_rtn: whatever `lowbit run` loads) converts through its
// dequantized weights, held once as dense f32 (as `lowbit run` holds them), with a warning on stderr.
#pragma once

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"
#include "format/gguf/gguf_writer.h"
#include "format/hf/hf_model.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::pipeline {

struct ConvertOptions {
    std::string input_dir;        // HF model folder (plain or quantized)
    std::string output_path;      // .gguf
    DType out_type = DType::kF16; // f32, f16, bf16 or q8_0 (2-D weights; 1-D and norms stay f32)
    bool progress = true;         // progress bar on a terminal
};

struct ConvertReport {
    int64_t n_tensors = 0;
    int64_t n_params = 0;       // elements over all written tensors (rope_freqs excluded)
    uint64_t n_bytes = 0;       // tensor bytes written (without padding)
    int64_t n_fallback_f16 = 0; // q8_0 tensors whose rows are not a multiple of 32 (written as f16)
};

// llama.cpp's LlamaFileType for an output type: F32 0, F16 1, Q8_0 7, BF16 32; -1 if not a convert type.
int file_type_for(DType out_type);

// --- Shared with `lowbit quantize`: an HF folder seen as the GGUF tensors convert writes. ---

// One GGUF tensor of an HF folder, in convert's order.
struct HfGgufTensor {
    std::string gguf_name;
    const format::TensorInfo* src = nullptr; // null for generated tensors (rope_freqs)
    Shape shape;                             // row-major, same as the source
    bool keep_f32 = false;                   // 1-D tensors and norms (convert keeps them f32)
    int64_t permute_heads = 0;               // > 0: Q/K row permutation with this many heads
    std::vector<float> generated;            // rope_freqs values
};

struct HfGgufSource {
    hf::HfModel model; // config and dir (its store moved into `store`)
    // The tensors the plan points into: the folder's own, or for a quantized folder (config.json has a
    // quantization_config) model/quantized's store of the dequantized dense weights under their HF names.
    std::shared_ptr<const format::TensorStore> store;
    std::string quantization; // model::quantized::describe_quantization: "" for an unquantized folder
    std::vector<HfGgufTensor> tensors;
};

// Opens the folder and plans its tensors (names, shapes checked against config.json, permutations). A quantized
// folder is dequantized once (every Linear to dense f32, LLM.int8 as w = q * SCB / 127, as `lowbit run` loads
// it); its other tensors stay mapped. Errors: as open_hf_model, plus the quantized loader's (kUnsupported for a
// quant_method lowbit cannot run).
Result<HfGgufSource> open_hf_gguf_source(const std::string& dir);
// The warning for writing a quantized folder's weights as `target` ("f16", "q4_k_m", ...): exactness of a float
// target w.r.t. the dequantized weights, compounded error for a quantized one. `float_target`: f32/f16/bf16.
std::string requantize_warning(const HfGgufSource& source, const std::string& target, bool float_target);
// general.* / <arch>.* keys and, when the folder has tokenizer.json, tokenizer.ggml.* keys.
Status set_hf_gguf_metadata(gguf::Writer& w, const hf::HfModel& model, int file_type);
// The whole tensor as f32 in GGUF row order (Q/K permuted): out = [shape.n_elems()].
Status read_hf_tensor_f32(const HfGgufSource& source, const HfGgufTensor& t, std::vector<float>& out);

// Errors: kBadInput (malformed folder, shapes inconsistent with config.json), kUnsupported (architecture,
// output type, tensor dtypes), kIo.
Result<ConvertReport> convert_hf_to_gguf(const ConvertOptions& options);

} // namespace lowbit::pipeline
