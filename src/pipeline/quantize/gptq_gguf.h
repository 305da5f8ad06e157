// SPDX-License-Identifier: MIT
// `lowbit quantize --method gptq --format gguf --type Q4_K_M|Q4_0|...`: GPTQ onto GGUF grids, written as the
// GGUF file the plain path writes (same llama.cpp mix, metadata and tensor order; llama.cpp runs it).
// Flow: the plain GGUF job plans the mix (per-tensor types, incl. the not-a-multiple-of-256 fallbacks) and asks
// for precomputed bytes; the streaming GPTQ driver (gptq_job.h) then quantizes every decoder linear onto ITS
// planned type's grid (quantize/gptq/gguf_grid.h) through the quantize_linear hook, with error propagation to
// later groups and layers; Q/K rows are permuted to GGUF order; the remaining tensors (token_embd, output,
// norms) are quantized by the plain path exactly as without GPTQ (with --imatrix if given).
// `quantize --method mix --gptq` runs the same flow with plain method "mix": the budget (mix_budget.h) chooses every
// tensor's type first, then each decoder linear is GPTQ'd onto its chosen type's grid (Q2_K … Q8_0 all have one).
// Memory: the packed linears of the whole model are held until the file is written (≈ the output size).
#pragma once

#include "pipeline/quantize/gptq_job.h"
#include "pipeline/quantize/quantize.h"

namespace lowbit::pipeline {

// Errors: kUsage (no --type / unknown type, --type with mix, a float type, --bits/--group-size given, --desc-act
// without
// --static-groups), kUnsupported (not an HF folder), those of calibration, GPTQ and the GGUF writer.
Result<QuantizeJobReport> quantize_gptq_to_gguf(const QuantizeJobOptions& options, const GptqJobOptions& gptq);

// The per-linear hook alone (also used by tests): quantizes W [n_out, n_in] (HF row order) with Hessian h onto
// the grid of `type` and returns its GGUF bytes in HF row order; `dequant` receives Ŵ [n_out, n_in]. Types
// without a grid (IQ4_NL fallbacks) are block-quantized with importance diag(H)/2 (an imatrix).
Result<std::vector<uint8_t>> gptq_gguf_linear(DType type, const std::vector<float>& w, int64_t n_out, int64_t n_in,
                                              std::vector<double>&& h, const GptqJobOptions& gptq,
                                              std::vector<float>& dequant, double& loss);

} // namespace lowbit::pipeline
