// SPDX-License-Identifier: MIT
// `lowbit quantize` dispatcher: method names, option checks, the final table.
#include "pipeline/quantize/quantize.h"

#include "pipeline/quantize/awq_job.h"
#include "pipeline/quantize/gptq_gguf.h"
#include "pipeline/quantize/gptq_job.h"
#include "quantize/algo_list.h"
#include "quantize/kquant/mix.h"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>

namespace lowbit::pipeline {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

} // namespace

bool is_gguf_method(std::string_view method) {
    return lower(method) == "mix" || quantize::kquant::file_type_from_name(lower(method)).has_value();
}

std::vector<std::string> quantize_method_names() {
    std::vector<std::string> names = {"q4_0",   "q4_1",   "q5_0",   "q5_1",   "q8_0",   "q2_k",   "q2_k_s",
                                      "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m",
                                      "q6_k",   "f16",    "bf16",   "f32",    "mix"};
    for (const auto& row : quantize::all_algos()) names.emplace_back(row.name);
    names.emplace_back("gptq");
    names.emplace_back("awq");
    return names;
}

Result<QuantizeJobReport> run_quantize(const QuantizeJobOptions& o) {
    if (o.input.empty()) return make_error(ErrorCode::kUsage, "quantize needs an input model (-m)");
    if (o.output.empty()) return make_error(ErrorCode::kUsage, "quantize needs an output path (-o)");
    const std::string method = lower(o.method);
    if (o.device != "auto" && method != "hqq" && method != "gptq" && method != "awq")
        return make_error(ErrorCode::kUsage,
                          "--device applies to hqq, gptq and awq (the solver's device), not '" + method + "'");
    const bool gguf = is_gguf_method(method);
    const bool gptq = method == "gptq", awq = method == "awq";
    const bool hf = gptq || awq || quantize::find_algo(method) != nullptr;
    if (!gguf && !hf)
        return make_error(ErrorCode::kUsage,
                          "unknown method '" + o.method + "' (known: " + join(quantize_method_names()) + ")");
    if (!o.format.empty() && o.format != "gguf" && o.format != "hf")
        return make_error(ErrorCode::kUsage, "--format must be 'gguf' or 'hf', got '" + o.format + "'");
    if (gguf && o.format == "hf")
        return make_error(ErrorCode::kUnsupported,
                          "method '" + method + "' is a GGUF type; it writes --format gguf (a .gguf file)");
    const bool gptq_gguf = gptq && o.format == "gguf"; // GPTQ onto the GGUF grids of --type's mix
    if (hf && !gptq_gguf && o.format == "gguf")
        return make_error(ErrorCode::kUnsupported,
                          "method '" + method + "' writes a safetensors directory (--format hf), not GGUF");
    if (gptq_gguf && o.device == "cuda") // the GPU driver has no GGUF-grid hook yet; never ignore the flag silently
        return make_error(ErrorCode::kUnsupported,
                          "gptq --format gguf runs on the CPU only (the GGUF block grids have no CUDA solver); "
                          "drop --device cuda");
    if (!o.gguf_type.empty() && !gptq_gguf)
        return make_error(ErrorCode::kUsage,
                          "--type applies to gptq --format gguf (plain GGUF: --method " + o.gguf_type + ")");
    if (!o.imatrix_path.empty() && !gguf && !gptq_gguf)
        return make_error(ErrorCode::kUsage, "--imatrix applies to GGUF k-quant methods only, not '" + method + "'");
    const bool mix = method == "mix";
    if (!o.calib.empty() && !gptq && !awq && !mix)
        return make_error(ErrorCode::kUsage,
                          "--calib applies to calibrated methods (gptq, awq, mix), not '" + method + "'");
    if (!mix && (o.target_bpw > 0 || o.target_size > 0 || !o.mix_types.empty() || !o.mix_report.empty() ||
                 !o.mix_sensitivity.empty()))
        return make_error(ErrorCode::kUsage,
                          "--target-bpw/--target-size/--types/--mix-report/--sensitivity apply to --method mix only");
    if (!gguf && !o.tensor_types.empty())
        return make_error(ErrorCode::kUsage, "--tensor-type applies to GGUF methods only, not '" + method + "'");
    if (o.mix_gptq && !mix)
        return make_error(
            ErrorCode::kUsage,
            "--gptq applies to --method mix (GPTQ onto each tensor's chosen GGUF grid); for one GGUF type "
            "use --method gptq --format gguf --type T");
    if (mix) {
        if (o.mix_gptq && o.calib.empty())
            return make_error(ErrorCode::kUsage, "mix --gptq needs calibration text: --calib FILE (GPTQ's Hessians and "
                                                 "the imatrix of the allocation are both computed from it)");
        if ((o.target_bpw > 0) == (o.target_size > 0))
            return make_error(ErrorCode::kUsage,
                              "method 'mix' needs exactly one of --target-bpw B (e.g. 4.5) and --target-size S "
                              "(e.g. 18MiB, 4.5GiB)");
        if (!o.calib.empty() && !o.imatrix_path.empty() && !o.mix_gptq)
            return make_error(ErrorCode::kUsage, "--calib and --imatrix exclude each other for mix (--calib FILE "
                                                 "computes the imatrix; with --gptq, --calib gives GPTQ's samples and "
                                                 "--imatrix the allocation's statistics)");
        if (o.calib == "self" || o.calib == "random")
            return make_error(ErrorCode::kUnsupported,
                              "mix --calib takes a text file (its imatrix is computed in-process); 'self'/'random' "
                              "are not supported for mix");
    }
    QuantizeJobOptions normalized = o;
    normalized.method = method;
    const auto gptq_options = [&o] {
        GptqJobOptions g;
        g.sym = false; // asymmetric by default: measured best (docs/quality.md, "GPTQ options"); --sym opts out
        g.desc_act = o.desc_act;
        g.static_groups = o.static_groups;
        g.damp_percent = o.damp;
        g.gptq_v2 = o.gptq_v2;
        g.calib.source = o.calib;
        g.calib.n_samples = o.n_samples;
        g.calib.seqlen = o.seqlen > 0 ? o.seqlen : 2048;
        g.calib.seed = o.seed;
        return g;
    };
    if (mix && o.mix_gptq) return quantize_gptq_to_gguf(normalized, gptq_options());
    if (gptq) {
        if (o.calib.empty())
            return make_error(ErrorCode::kUsage, "gptq needs calibration data: --calib FILE (text) or --calib self "
                                                 "(the model generates its own samples)");
        return gptq_gguf ? quantize_gptq_to_gguf(normalized, gptq_options())
                         : quantize_gptq_to_hf(normalized, gptq_options());
    }
    if (awq) {
        if (o.calib.empty())
            return make_error(ErrorCode::kUsage, "awq needs calibration data: --calib FILE (text) or --calib self "
                                                 "(the model generates its own samples)");
        AwqJobOptions a; // AutoAWQ defaults: int4 g128 asym, 128 samples x 512 tokens
        a.calib.source = o.calib;
        a.calib.n_samples = o.n_samples;
        a.calib.seqlen = o.seqlen > 0 ? o.seqlen : 512;
        a.calib.seed = o.seed;
        return quantize_awq_to_hf(normalized, a);
    }
    return gguf ? quantize_to_gguf(normalized) : quantize_to_hf(normalized);
}

std::string render_quantize_report(const QuantizeJobReport& r) {
    std::string out = r.allocation;
    out += fmt::format("{:<10} {:>8} {:>14} {:>14} {:>8}\n", "type", "tensors", "weights", "bytes", "bpw");
    for (const auto& row : r.rows) {
        const double bpw = row.n_elems ? 8.0 * double(row.n_bytes) / double(row.n_elems) : 0.0;
        out += fmt::format("{:<10} {:>8} {:>14} {:>14} {:>8.4f}\n", row.type, row.n_tensors, row.n_elems, row.n_bytes,
                           bpw);
    }
    out += fmt::format("total: {} params, {} tensor bytes ({:.2f} MiB), {:.4f} bpw, {:.2f} MiB on disk, {:.2f} s\n",
                       r.n_params, r.n_bytes, double(r.n_bytes) / (1 << 20), r.bpw(), double(r.file_bytes) / (1 << 20),
                       r.seconds);
    out += "wrote " + r.output + "\n";
    return out;
}

} // namespace lowbit::pipeline
