// SPDX-License-Identifier: MIT
// `lowbit compare`: one model, several quantization methods, judged the same way in one run. The source model's
// log-probabilities on the eval text are stored once (DIR/base.kld); then per method: quantize (the quantize job,
// in-process), KL divergence / PPL / top-1 against the base (the perplexity job), token generation speed (the
// bench job). Each finished method is cached as DIR/results/<method>.json, so a rerun skips it. Writes
// DIR/report.md (table), DIR/report.json and DIR/pareto.svg (bpw against mean KLD on a log axis, Pareto front,
// budgeted mixes as a line).
//
// Method names: the GGUF methods of `quantize` (q8_0, q6_k, q5_k_m, q4_k_m, q4_0, q3_k_m, q2_k, f16, ...),
// with "+imatrix" to quantize with the importance matrix (q4_k_m+imatrix); HF-style nf4, fp4, int8, rtn4, rtn3,
// hqq4, hqq3, hqq2, gptq4, gptq3, awq4 (gptq/awq need --calib); mix@B (mix to B bpw, e.g. mix@4.5) and
// mix@METHOD (mix to the file size of another listed method, e.g. mix@q4_k_m+imatrix); mixgptq@B / mixgptq@METHOD
// the same with --gptq (needs --calib). Mixes use the imatrix.
#pragma once

#include "core/error.h"
#include "pipeline/quantize/quantize.h"

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::pipeline {

struct CompareOptions {
    std::string model; // HF folder or .gguf (the source)
    std::vector<std::string> methods;
    std::string eval_file; // text scored (wikitext-2 test)
    int64_t n_ctx = 512;
    int64_t n_chunks = 100;
    std::string calib;   // calibration text for imatrix / gptq / awq
    std::string imatrix; // an existing imatrix instead of computing one from --calib
    int64_t imatrix_chunks = 100;
    std::string mix_sensitivity; // passed to the mixes (quantize --sensitivity)
    std::string out_dir;
    int n_threads = 0;
    int64_t n_gen = 32; // tg test length (0: skip the speed test)
    int repetitions = 2;
    bool progress = true;
};

// One method as it will run: its label, how to quantize, and the mix target if any.
struct CompareMethod {
    std::string name;            // as given (lower case), also the cache key
    QuantizeJobOptions quantize; // input/output filled by run_compare
    bool needs_imatrix = false;
    std::string size_of; // mix@METHOD: that method's file size is the target
    bool is_mix = false;
};

// Parses and checks every name before any work. Errors (kUsage): unknown name (listing the known ones),
// duplicates, gptq/awq/+imatrix/mix without --calib or --imatrix, mix@METHOD naming a method not in the list.
Result<std::vector<CompareMethod>> parse_compare_methods(const std::vector<std::string>& names,
                                                         const CompareOptions& options);

// The order methods run in: as listed, except that mix@METHOD waits for METHOD (its file size) and then runs
// right after it.
std::vector<CompareMethod> order_compare_methods(std::vector<CompareMethod> methods);

struct CompareRow {
    std::string method;
    uint64_t file_bytes = 0;
    double file_mib = 0, bpw = 0;
    double ppl = 0, ppl_err = 0, dppl_pct = 0;
    double kld = 0, kld_err = 0, same_top_pct = 0;
    double quantize_s = 0, tg_ts = 0;
    bool is_mix = false;
};

struct CompareReport {
    double base_ppl = 0;
    int64_t n_chunks = 0, n_ctx = 0, n_tokens = 0;
    std::vector<CompareRow> rows;
};

Result<CompareReport> run_compare(const CompareOptions& options);

// The outputs (pure functions, tested).
std::string compare_markdown(const CompareReport& r, const CompareOptions& o);
std::string compare_json(const CompareReport& r, const CompareOptions& o);
std::string compare_svg(const CompareReport& r);
// Indices of rows on the Pareto front (no other row has both smaller-or-equal bpw and smaller KLD), by bpw.
std::vector<size_t> pareto_front(const std::vector<CompareRow>& rows);

} // namespace lowbit::pipeline
