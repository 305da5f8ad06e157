// SPDX-License-Identifier: MIT
// The part of every quantized Hugging Face checkpoint writer that does not depend on the method (GPTQ, AWQ):
// model.safetensors where each quantized Linear's "<prefix>.weight" is replaced by its packed records and every
// other tensor is copied (or replaced by caller-provided bytes), config.json = the source's plus
// quantization_config, method-specific side files (quantize_config.json, quant_config.json), tokenizer and
// generation files copied. Every file goes through AtomicWriter (temp + rename).
#pragma once

#include "core/error.h"
#include "core/file.h"
#include "format/tensor_store.h"
#include "pipeline/quantize/quantize.h"
#include "scheme/int_group/tensor_record.h"

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace lowbit::pipeline {

struct HfQuantizedCheckpoint {
    std::string row_type;  // report row of the packed linears: "gptq_int4", "awq_int4"
    std::string quantizer; // safetensors __metadata__ "quantizer": "lowbit gptq"
    // HF module prefix -> packed records; they replace "<prefix>.weight" as "<prefix>.<suffix>" (must exist).
    std::map<std::string, std::vector<scheme::TensorRecord>> modules;
    // HF tensor name -> bytes replacing the source tensor's (same dtype and byte count; must exist).
    std::map<std::string, std::vector<uint8_t>> replaced;
    std::string quantization_config_json; // a JSON object, set as config.json's "quantization_config"
    std::vector<std::pair<std::string, std::string>> side_files; // file name in out_dir -> text
};

// The staging directory of a quantized directory output (issue #15): everything is written under
// "<out_dir>.tmp.<pid>" and StagedDir::commit() moves it into place, so a kill leaves out_dir holding the old
// model or the new one, never a mix. An existing out_dir is replaced only when it is empty or looks like a model
// directory (has a config.json): kUsage otherwise (it would be deleted), and for a non-directory. kIo.
Result<std::unique_ptr<StagedDir>> stage_output_dir(const std::string& out_dir);

// Writes out_dir (created when missing, through stage_output_dir) from `store` and src_dir/config.json (+ tokenizer
// files). Report: one row per packed type and per copied dtype; n_params = source elements, n_bytes = tensor bytes
// written, file_bytes = size of every file in out_dir. Errors: kUsage (a module or replaced tensor not in the store,
// bad replacement size), kBadInput (src_dir/config.json not JSON), kIo.
Status write_hf_quantized_checkpoint(const std::string& out_dir, const std::string& src_dir,
                                     const format::TensorStore& store, const HfQuantizedCheckpoint& checkpoint,
                                     QuantizeJobReport& report);

// The files beside model.safetensors: config.json (the source's + quantization_config), c.side_files, and the
// source's tokenizer / generation files copied (the writer and HfCheckpointStream both finish with this).
// kBadInput when src_dir/config.json is not JSON, kIo.
Status write_hf_side_files(const std::string& out_dir, const std::string& src_dir, const HfQuantizedCheckpoint& c);

// `values` encoded as dtype (F32, F16 or BF16, round to nearest even): what a replaced tensor's bytes are made of.
// kUnsupported for other dtypes (names the dtype and `name`).
Result<std::vector<uint8_t>> encode_f32_as(DType dtype, std::span<const float> values, const std::string& name);

} // namespace lowbit::pipeline
