// SPDX-License-Identifier: MIT
// `lowbit compare -m MODEL --methods m1,m2,... -f EVAL [--chunks N] [-c CTX] [--calib FILE | --imatrix F]
//                 [-o DIR] [-t N] [--tg N]`: quantize with every method, measure PPL / KLD / top-1 / size / bpw /
// quantize time / tg against the source, write DIR/report.md, report.json, pareto.svg (pipeline/compare).
#include "cli/commands.h"
#include "pipeline/compare/compare.h"

#include <cstdio>
#include <fmt/format.h>
#include <sstream>

namespace lowbit::cli {

CommandAction setup_compare(CLI::App& sub) {
    struct Args {
        pipeline::CompareOptions o;
        std::string methods;
        bool no_progress = false;
    };
    auto a = std::make_shared<Args>();
    a->o.out_dir = "compare";
    sub.add_option("-m,--model", a->o.model, "Source model: Hugging Face folder or .gguf")->required();
    sub.add_option("--methods", a->methods,
                   "Comma-separated methods: GGUF types/mixes (q8_0, q4_k_m, ...; +imatrix), nf4, fp4, int8, rtn4, "
                   "rtn3, hqq4, hqq3, hqq2, gptq4, gptq3, awq4, mix@BPW, mix@METHOD")
        ->required();
    sub.add_option("-f,--file", a->o.eval_file, "Text to score (e.g. wikitext-2 wiki.test.raw)")->required();
    sub.add_option("--chunks", a->o.n_chunks, "Chunks of the eval text (default 100)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
    sub.add_option("-c,--ctx-size", a->o.n_ctx, "Tokens per chunk (default 512)")
        ->check(CLI::Range(int64_t(3), int64_t(1) << 20));
    sub.add_option("--calib", a->o.calib, "Calibration text: the imatrix (+imatrix, mix) and gptq/awq samples");
    sub.add_option("--imatrix", a->o.imatrix, "An existing imatrix (instead of computing one from --calib)");
    sub.add_option("--imatrix-chunks", a->o.imatrix_chunks, "Chunks of 512 of --calib for the imatrix (default 100)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
    sub.add_option("-o,--output", a->o.out_dir, "Output directory: cache, report.md, report.json, pareto.svg");
    sub.add_option("--tg", a->o.n_gen, "Tokens of the generation speed test (0: skip; default 32)")
        ->check(CLI::Range(int64_t(0), int64_t(1) << 20));
    sub.add_option("--repetitions", a->o.repetitions, "Repetitions of the speed test (default 2)")
        ->check(CLI::Range(1, 1000));
    sub.add_option("--sensitivity", a->o.mix_sensitivity,
                   "Measured per-tensor KLD for the mixes (quantize --sensitivity, bench/mix_proxy_check.py)");
    add_threads_flag(sub, a->o.n_threads);
    sub.add_flag("--no-progress", a->no_progress, "Do not draw the progress bar");
    return [a]() -> Status {
        std::stringstream ss(a->methods);
        std::string item;
        a->o.methods.clear();
        while (std::getline(ss, item, ','))
            if (!item.empty()) a->o.methods.push_back(item);
        a->o.progress = !a->no_progress;
        LOWBIT_ASSIGN_OR_RETURN(const pipeline::CompareReport r, pipeline::run_compare(a->o));
        std::fputs(pipeline::compare_markdown(r, a->o).c_str(), stdout);
        std::fputs(fmt::format("\nwrote {0}/report.md, {0}/report.json, {0}/pareto.svg\n", a->o.out_dir).c_str(),
                   stdout);
        return ok_status();
    };
}

} // namespace lowbit::cli
