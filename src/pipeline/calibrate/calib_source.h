// SPDX-License-Identifier: MIT
// The common start of every calibrated job (gptq, awq, gptq --format gguf): an HF model directory checked and
// mapped for streaming, plus its calibration samples. One place for the input checks and their messages.
#pragma once

#include "format/hf/config.h"
#include "format/tensor_store.h"
#include "pipeline/calibrate/calib_data.h"
#include "runtime/session.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::pipeline {

struct CalibratedSource {
    format::ModelConfig config;                       // from the opened model (what the job binds)
    std::unique_ptr<runtime::Session> session;        // tokenizer + thread pool; a 1-position cache unless "self"
    CalibSamples samples;                             // N x L token ids
    std::shared_ptr<const format::TensorStore> store; // the mmap'd weights
};

// `input` must be an HF model directory (kUnsupported naming `method` otherwise). `check` sees config.json
// before anything heavy is opened (option checks against the shapes); then --seqlen is checked against the
// model context (kUsage), the session opened, the samples loaded and the weights mapped.
Result<CalibratedSource> open_calibrated_source(const std::string& input, const std::string& method,
                                                const CalibOptions& calib, int n_threads,
                                                const std::function<Status(const format::ModelConfig&)>& check = {});

// The layer-0 inputs of the streaming drivers: the embeddings of every sample, [N*L, hidden] f32 row-major.
// kUsage naming `method` when there are no samples or they differ in length.
Result<std::vector<float>> embed_samples(std::shared_ptr<const format::TensorStore> store,
                                         const format::ModelConfig& config, const CalibSamples& samples,
                                         const std::string& method);

} // namespace lowbit::pipeline
