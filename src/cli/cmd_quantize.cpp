// SPDX-License-Identifier: MIT
// `lowbit quantize -m IN -o OUT --method M [...]`: GGUF methods write a .gguf llama.cpp runs; HF-style methods
// (rtn, int8, nf4, fp4, hqq) write a safetensors directory with its quantization_config.
#include "cli/commands.h"
#include "core/thread_pool.h"
#include "pipeline/quantize/quantize.h"

#include <cctype>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace lowbit::cli {
namespace {

// "18874368", "18MiB", "4.5GiB", "500MB", "20 MiB" -> bytes; nullopt when malformed or not positive.
std::optional<uint64_t> parse_size(const std::string& text) {
    size_t pos = 0;
    double v = 0;
    try {
        v = std::stod(text, &pos);
    } catch (...) {
        return std::nullopt;
    }
    std::string unit = text.substr(pos);
    while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
    for (char& c : unit) c = char(std::tolower(static_cast<unsigned char>(c)));
    double mul = 0;
    if (unit.empty() || unit == "b")
        mul = 1;
    else if (unit == "kib" || unit == "k")
        mul = 1024.0;
    else if (unit == "mib" || unit == "m")
        mul = 1024.0 * 1024;
    else if (unit == "gib" || unit == "g")
        mul = 1024.0 * 1024 * 1024;
    else if (unit == "kb")
        mul = 1e3;
    else if (unit == "mb")
        mul = 1e6;
    else if (unit == "gb")
        mul = 1e9;
    if (mul == 0 || !(v > 0) || v * mul > 1.8e19) return std::nullopt;
    return static_cast<uint64_t>(v * mul);
}

} // namespace

CommandAction setup_quantize(CLI::App& sub) {
    struct Args {
        pipeline::QuantizeJobOptions o;
        int bits = 0;
        int64_t group_size = 0, block_size = 0;
        bool sym = false, asym = false, no_double_quant = false, no_progress = false;
        std::string target_size;
    };
    auto a = std::make_shared<Args>();
    std::string methods;
    for (const auto& m : pipeline::quantize_method_names()) methods += (methods.empty() ? "" : ", ") + m;
    sub.add_option("-m,--model", a->o.input, "Input model: Hugging Face folder or .gguf file")->required();
    sub.add_option("-o,--output", a->o.output, "Output: .gguf file (GGUF methods) or directory (HF-style methods)")
        ->required();
    sub.add_option("--method", a->o.method, "Quantization method: " + methods)->required();
    // Options of the HF-style methods only: a GGUF method's block format fixes them, so giving one is an error.
    const std::vector<CLI::Option*> hf_only = {
        sub.add_option("--bits", a->bits, "Bits per weight for rtn/gptq/awq (2/3/4/8) and hqq (1/2/3/4/8)"),
        sub.add_option("--group-size", a->group_size, "Group size for rtn/hqq (-1 = per output channel)"),
        sub.add_flag("--sym", a->sym, "Symmetric integer grid (rtn, gptq)"),
        sub.add_flag("--asym", a->asym,
                     "Asymmetric integer grid with zero points (rtn; gptq's default, as it measures best)"),
        sub.add_option("--block-size", a->block_size, "NF4/FP4 block size (32..4096, default 64)"),
        sub.add_flag("--no-double-quant", a->no_double_quant,
                     "NF4/FP4: keep absmax in f32 (double quant is on by default)")};
    sub.add_option("--imatrix", a->o.imatrix_path, "Importance matrix (llama.cpp GGUF imatrix) for k-quants and mix");
    sub.add_option("--format", a->o.format, "Output format: gguf or hf (implied by the method; gptq: either)");
    sub.add_option("--type", a->o.gguf_type,
                   "gptq --format gguf: llama.cpp file type whose mix and grids to use (Q4_K_M, Q5_K_M, Q6_K, Q4_0, "
                   "Q4_1, Q8_0, ...)");
    sub.add_option("--calib", a->o.calib,
                   "gptq/awq: calibration text file (mix: a text file, its imatrix is computed first), 'self' (the "
                   "model samples its own text) or 'random' (seeded "
                   "random token ids, for benchmarks)");
    sub.add_option("--nsamples", a->o.n_samples, "gptq/awq: calibration samples (default 128)")
        ->check(CLI::PositiveNumber);
    sub.add_option("--seqlen", a->o.seqlen,
                   "gptq/awq: tokens per sample (default gptq 2048, awq 512; at most the model context)")
        ->check(CLI::PositiveNumber);
    sub.add_option("--seed", a->o.seed, "gptq: seed of the calibration windows / self-generated samples");
    sub.add_flag("--desc-act,!--no-desc-act", a->o.desc_act,
                 "gptq: act-order, columns by decreasing Hessian diagonal (default on: it measures best, see "
                 "docs/quality.md; --no-desc-act: columns in order, AutoGPTQ's old default)");
    CLI::Option* static_groups =
        sub.add_flag("--static-groups,!--no-static-groups", a->o.static_groups,
                     "gptq: group parameters fixed before act-order, so g_idx stays i / group_size (default on with "
                     "act-order: same quality, fast-kernel friendly, needed for --format gguf)");
    sub.add_option("--damp", a->o.damp, "gptq: damping as a fraction of mean diag(H) (default 0.01)");
    sub.add_flag("--gptq-v2", a->o.gptq_v2, "gptq: write checkpoint_format gptq_v2 (zeros not stored as zero-1)");
    sub.add_option("--target-bpw", a->o.target_bpw,
                   "mix: bits per weight of the whole model (tensor bytes * 8 / params), e.g. 4.5")
        ->check(CLI::PositiveNumber);
    sub.add_option("--target-size", a->target_size, "mix: size of the output file, e.g. 18MiB, 4.5GiB, 19000000");
    sub.add_option("--types", a->o.mix_types,
                   "mix: candidate GGUF types, comma-separated (default q2_k,q3_k,q4_k,q5_k,q6_k,q8_0)");
    sub.add_option("--tensor-type", a->o.tensor_types,
                   "GGUF methods: PATTERN=TYPE, the type of the tensors whose name matches the regex (as "
                   "llama-quantize's --tensor-type; repeatable, first match wins)");
    sub.add_option("--mix-report", a->o.mix_report,
                   "mix: write every tensor's candidate types with bytes and predicted damage (JSON) to this file");
    sub.add_flag("--gptq", a->o.mix_gptq,
                 "mix: GPTQ every decoder linear onto the grid of its chosen type (needs --calib FILE; --nsamples, "
                 "--seqlen, --damp as for gptq)");
    sub.add_option("--sensitivity", a->o.mix_sensitivity,
                   "mix: measured single-tensor KLD per tensor (bench/mix_proxy_check.py --json) that calibrates "
                   "the proxy tensor by tensor");
    add_threads_flag(sub, a->o.n_threads);
    sub.add_flag("--no-progress", a->no_progress, "Do not draw the progress bar");
    sub.add_option("--device", a->o.device,
                   "hqq/gptq/awq: where the solver runs: auto (cuda when built with CUDA and a GPU is present), cpu, "
                   "cuda");
    return [a, hf_only, static_groups]() -> Status {
        if (a->sym && a->asym) return make_error(ErrorCode::kUsage, "--sym and --asym exclude each other");
        auto& o = a->o;
        if (pipeline::is_gguf_method(o.method))
            for (const CLI::Option* opt : hf_only)
                if (opt->count() > 0)
                    return make_error(ErrorCode::kUsage,
                                      opt->get_name() + " does not apply to GGUF method '" + o.method +
                                          "': its block format fixes bits, grouping and scales (the option is for "
                                          "rtn, hqq, nf4/fp4, gptq and awq); drop it or choose one of those methods");
        if (!a->target_size.empty()) {
            const std::optional<uint64_t> b = parse_size(a->target_size);
            if (!b)
                return make_error(ErrorCode::kUsage, "--target-size '" + a->target_size +
                                                         "' is not a size (a positive number with an optional unit "
                                                         "B, KiB, MiB, GiB, KB, MB, GB)");
            o.target_size = *b;
        }
        if (a->bits != 0) o.bits = a->bits;
        if (a->group_size != 0) o.group_size = a->group_size;
        if (a->block_size != 0) o.block_size = a->block_size;
        if (!o.desc_act && static_groups->count() == 0) o.static_groups = false; // static groups need act-order
        if (a->sym) o.symmetric = true;
        if (a->asym) o.symmetric = false;
        o.double_quant = !a->no_double_quant;
        o.progress = !a->no_progress;
        ThreadPool::set_default_threads(o.n_threads);
        LOWBIT_ASSIGN_OR_RETURN(pipeline::QuantizeJobReport r, pipeline::run_quantize(o));
        std::fputs(pipeline::render_quantize_report(r).c_str(), stdout);
        return ok_status();
    };
}

} // namespace lowbit::cli
