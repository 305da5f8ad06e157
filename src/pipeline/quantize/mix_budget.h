// SPDX-License-Identifier: MIT
// `quantize --method mix`: per-tensor GGUF types chosen to a byte budget. For every tensor llama-quantize would
// quantize and every candidate type whose block fits its rows, the sensitivity proxy (quantize/mix/sensitivity.h,
// weighted by the imatrix when one is given) and the bytes; then the exact knapsack (quantize/mix/budget.h)
// minimises the summed proxy under the budget. Tensors llama.cpp leaves alone (norms, 1-D) keep their type and
// count against the budget. The result is an ordinary kquant::MixPlan, written by the plain GGUF job.
#pragma once

#include "core/dtype.h"
#include "core/error.h"
#include "pipeline/quantize/gguf_source.h"
#include "quantize/kquant/mix.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lowbit::pipeline {

// Candidate types when --types is not given.
std::vector<DType> default_mix_types();
// "q2_k,q4_k,Q8_0" -> types. Errors (kUsage): an unknown name, a type lowbit cannot write as a GGUF block type,
// an empty list, duplicates.
Result<std::vector<DType>> parse_mix_types(const std::string& list);

// Measured sensitivities (bench/mix_proxy_check.py --json): per tensor the KLD when only that tensor is stored
// as `type` (F16 elsewhere), minus the F16 floor. They calibrate the proxy per tensor: damage(T) =
// proxy(T) * measured / proxy(type), so the allocator minimises predicted KLD, not raw squared error.
struct MixSensitivity {
    DType type = DType::kQ2_K;
    std::map<std::string, double> kld; // tensor name -> measured KLD above the floor
};
// Errors: kIo, kBadInput (not that JSON: "type", "floor", "rows": [{"tensor", "kld"}]).
Result<MixSensitivity> read_mix_sensitivity(const std::string& path);

struct MixBudgetRequest {
    double target_bpw = 0;                       // > 0: tensor bytes <= bpw * n_params / 8
    uint64_t target_file_bytes = 0;              // > 0: whole file (header + aligned tensors) <= this
    std::vector<DType> types;                    // candidates (default_mix_types() when empty)
    uint64_t header_bytes = 0;                   // GGUF header of the output (independent of the tensor types)
    uint64_t alignment = 32;                     // GGUF data alignment
    const MixSensitivity* sensitivity = nullptr; // null: the raw proxy
};

struct MixBudgetResult {
    quantize::kquant::MixPlan plan;
    double predicted_damage = 0;
    uint64_t tensor_bytes = 0;
    std::string summary; // the allocation: type counts, bpw per layer
    std::string json;    // every tensor's candidates {type, bytes, damage} and the choice (--mix-report)
};

// importance: per tensor of `src` ([ne0] or empty = all ones), as the GGUF job matched it from the imatrix.
// Errors: kUsage for a budget outside the feasible range (message in the unit the budget was given in: bpw or
// bytes / MiB) or both/neither targets, those of reading the source.
Result<MixBudgetResult> plan_budget_mix(const GgufQuantSource& src, const std::vector<std::vector<float>>& importance,
                                        const MixBudgetRequest& request, bool progress);

// llama.cpp file type recorded for a mix (general.file_type): the _M mix of the type covering most weights.
quantize::kquant::FileType mix_file_type(const GgufQuantSource& src, const quantize::kquant::MixPlan& plan);

} // namespace lowbit::pipeline
