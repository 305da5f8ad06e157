// SPDX-License-Identifier: MIT
// The algorithm table: one row per way of choosing quantized values. Every row has the same contract:
//   weights [n_rows, n_cols] f32 (nn.Linear orientation [out, in]) + optional calibration statistics +
//   target scheme parameters  ->  the scheme's state-dict records + an error report.
// Rows today: rtn (integer groups), int8 (LLM.int8 rows), nf4, fp4 (bitsandbytes 4-bit), hqq.
// GGUF k-quants, GPTQ and AWQ add rows here. Writers (format/) and the `lowbit quantize` job (pipeline/) use
// only this header.
#pragma once

#include "core/error.h"
#include "core/thread_pool.h"
#include "scheme/int_group/tensor_record.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace lowbit::quantize {

struct CalibStats; // per-layer activation statistics; defined by the calibrated algorithms (GPTQ, AWQ)

// Parameters of the target scheme; each row reads the fields it documents and ignores the rest.
struct SchemeParams {
    int bits = 4;                   // rtn: 2/3/4/8; hqq: 1/2/3/4/8
    int64_t group_size = 128;       // rtn (-1 = per-channel), hqq (divides numel)
    bool symmetric = false;         // rtn
    int64_t block_size = 64;        // nf4/fp4: 32..4096, power of two
    bool double_quant = true;       // nf4/fp4
    int axis = 1;                   // hqq
    std::optional<bool> round_zero; // hqq (unset: true for 4-bit)
    bool optimize = true;           // hqq: run the proximal solver
    double kappa = 1.01;            // hqq: beta growth per iteration (1.0 = hqq 0.2.8's behaviour)
};

struct QuantizeRequest {
    const float* weights = nullptr; // [n_rows, n_cols] f32
    int64_t n_rows = 0;
    int64_t n_cols = 0;
    const CalibStats* calib = nullptr; // null for calibration-free rows
    SchemeParams params;
    ThreadPool* pool = nullptr; // null: ThreadPool::global()
};

// Reconstruction error of dequant(quant(W)) against W.
struct QuantizeReport {
    double rmse = 0.0;            // sqrt(mean (W - W')^2)
    double rel_rmse = 0.0;        // rmse / std(W)
    double max_abs_err = 0.0;     // max |W - W'|
    double bits_per_weight = 0.0; // all record bytes * 8 / numel
    int n_iters = 0;              // solver iterations (hqq), 0 otherwise
};

struct QuantizeOutput {
    std::vector<scheme::TensorRecord> records; // suffixes relative to the module prefix (scheme headers)
    QuantizeReport report;
};

using QuantizeFn = Result<QuantizeOutput> (*)(const QuantizeRequest& request);

struct AlgoRow {
    std::string_view name;    // "rtn", "int8", "nf4", "fp4", "hqq"
    std::string_view scheme;  // storage written: "int_group", "llm_int8", "bnb_4bit", "hqq"
    std::string_view summary; // one line for `lowbit quantize --help`
    bool needs_calib;         // true: request.calib must be set
    QuantizeFn quantize;
};

std::span<const AlgoRow> all_algos();
// nullptr when unknown.
const AlgoRow* find_algo(std::string_view name);

// Checks the request's pointers and shape (kUsage) and the calibration requirement.
Status check_request(const AlgoRow& row, const QuantizeRequest& request);
// Error statistics of `dequant` against `w` ([n] each) and the bits per weight of `record_bytes`.
QuantizeReport measure_error(const float* w, const float* dequant, int64_t n, uint64_t record_bytes);

} // namespace lowbit::quantize
