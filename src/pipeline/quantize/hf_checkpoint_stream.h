// SPDX-License-Identifier: MIT
// Streamed quantized Hugging Face checkpoint: the same directory write_hf_quantized_checkpoint writes, byte for
// byte, but each quantized Linear is written as soon as it is finished, so the packed model never sits in memory.
// Why one file with precomputed offsets (not one shard per group of layers): the packed shapes follow from each
// linear's shape and the scheme's parameters, so the whole header is known before the first layer runs; the
// file is laid out once (copied tensors from the source map, zeros where linears go) and every linear is then
// written at its offset with pwrite, in any order. The output stays identical to the in-memory writer (one
// model.safetensors, no index), readers see no difference, and a crash leaves only
// "model.safetensors.partial.<pid>" (removed when the stream is destroyed unfinished); finish() syncs and
// renames it into place, then writes config.json, the side files and the tokenizer files.
#pragma once

#include "core/error.h"
#include "format/tensor_store.h"
#include "pipeline/quantize/hf_checkpoint_writer.h"
#include "pipeline/quantize/quantize.h"
#include "scheme/int_group/tensor_record.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lowbit::pipeline {

class HfCheckpointStream {
  public:
    // `plan` as for write_hf_quantized_checkpoint, except: the records of `modules` give only suffix, dtype and
    // shape (their bytes are ignored; they arrive through add()), and `replaced` names the tensors whose bytes
    // arrive through replace() (the vectors are ignored). Writes the layout to out_dir (created when missing).
    // Errors: as write_hf_quantized_checkpoint (kUsage for unknown names), kIo.
    static Result<std::unique_ptr<HfCheckpointStream>> create(const std::string& out_dir, const std::string& src_dir,
                                                              const format::TensorStore& store,
                                                              const HfQuantizedCheckpoint& plan);
    ~HfCheckpointStream();
    HfCheckpointStream(const HfCheckpointStream&) = delete;
    HfCheckpointStream& operator=(const HfCheckpointStream&) = delete;

    // The packed records of one planned module: same suffixes, dtypes and shapes as planned (kInternal when not,
    // or when the module is unknown or came already). Safe to call from one thread at a time.
    Status add(const std::string& module, const std::vector<scheme::TensorRecord>& records);
    // The bytes of a planned replaced tensor (its source size).
    Status replace(const std::string& name, std::span<const uint8_t> bytes);
    // Every planned tensor must have arrived (kInternal naming the first missing one). Fills `report` exactly as
    // write_hf_quantized_checkpoint does.
    Status finish(QuantizeJobReport& report);

    // Tensors still to come (modules' records and replaced tensors).
    size_t n_pending() const;

  private:
    struct Impl;
    explicit HfCheckpointStream(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace lowbit::pipeline
