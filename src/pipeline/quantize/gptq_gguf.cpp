// SPDX-License-Identifier: MIT
// GPTQ onto GGUF grids, written through the plain GGUF job's precomputed-bytes input (see gptq_gguf.h).
#include "pipeline/quantize/gptq_gguf.h"

#include "core/log.h"
#include "format/hf/hf_model.h"
#include "format/hf/names.h"
#include "pipeline/calibrate/calib_source.h"
#include "quantize/gptq/gguf_grid.h"
#include "quantize/kquant/imatrix.h"
#include "quantize/kquant/mix.h"
#include "runtime/session.h"
#include "scheme/scheme_list.h"

#include <cctype>
#include <chrono>
#include <fmt/format.h>

namespace lowbit::pipeline {
namespace {

namespace gq = quantize::gptq;
namespace kq = quantize::kquant;
using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

Status check_gguf_options(const QuantizeJobOptions& job, const GptqJobOptions& gptq) {
    if (job.method == "mix") { // the budget chooses each tensor's type (mix_budget.h)
        if (!job.gguf_type.empty())
            return make_error(ErrorCode::kUsage, "--type does not apply to mix --gptq: the budget chooses every "
                                                 "tensor's type (--target-bpw or --target-size)");
    } else {
        if (job.gguf_type.empty())
            return make_error(ErrorCode::kUsage, "gptq --format gguf needs --type: the llama.cpp file type whose mix "
                                                 "and grids to use (Q4_K_M, Q5_K_M, Q6_K, Q4_0, Q4_1, Q8_0, ...)");
        const std::optional<kq::FileType> ft = kq::file_type_from_name(lower(job.gguf_type));
        if (!ft) return make_error(ErrorCode::kUsage, "--type '" + job.gguf_type + "' is not a llama.cpp file type");
        if (!dtype_is_quantized(kq::default_dtype(*ft)))
            return make_error(ErrorCode::kUsage,
                              "--type " + job.gguf_type + " is a float type: there is nothing for GPTQ to quantize");
    }
    if (job.bits || job.group_size || job.symmetric)
        return make_error(ErrorCode::kUsage, "--bits/--group-size/--sym/--asym do not apply to gptq --format gguf: "
                                             "the GGUF type (--type) fixes each tensor's grid");
    if (gptq.desc_act && !gptq.static_groups)
        return make_error(ErrorCode::kUsage,
                          "--desc-act needs --static-groups with --format gguf: a GGUF block holds 32/256 "
                          "consecutive columns whose parameters are chosen when the block starts; act-order visits a "
                          "block's columns at scattered times, so its parameters must be fixed beforehand");
    if (!hf::is_hf_model_dir(job.input))
        return make_error(ErrorCode::kUnsupported,
                          "gptq needs a Hugging Face model directory (config.json + safetensors); '" + job.input +
                              "' is not one");
    return ok_status();
}

// Q/K rows of arch "llama" are permuted in GGUF (convert_hf_to_gguf.py); 0 = no permutation.
int64_t permute_heads(const format::ModelConfig& c, const std::string& gguf_name) {
    if (c.arch != "llama") return 0;
    const char kind = hf::qk_kind(gguf_name);
    return kind == 'q' ? c.n_heads : kind == 'k' ? c.n_kv_heads : 0;
}

} // namespace

Result<std::vector<uint8_t>> gptq_gguf_linear(DType type, const std::vector<float>& w, int64_t n_out, int64_t n_in,
                                              std::vector<double>&& h, const GptqJobOptions& gptq,
                                              std::vector<float>& dequant, double& loss) {
    if (gq::has_gguf_grid(type)) {
        LOWBIT_ASSIGN_OR_RETURN(std::unique_ptr<gq::GgufGrid> grid, gq::GgufGrid::create(type, n_out, n_in));
        gq::GptqOptions g;
        g.group_size = grid->required_group_size();
        // Groups of 32 start inside a 128 block, where gptq.py would choose their parameters from weights that
        // miss the block's own updates; blocks of one group keep every group's parameters current.
        g.block_size = std::min<int64_t>(128, g.group_size);
        g.desc_act = gptq.desc_act;
        g.static_groups = gptq.static_groups;
        g.damp_percent = gptq.damp_percent;
        LOWBIT_ASSIGN_OR_RETURN(gq::GptqResult r,
                                gq::gptq_quantize_with(w.data(), n_out, n_in, std::move(h), g, *grid));
        LOWBIT_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, grid->pack(r));
        dequant = std::move(r.dequant);
        loss = r.loss;
        return bytes;
    }
    // No grid (IQ4_NL...): the block quantizer with the calibration's importance, no error feedback.
    const scheme::SchemeTraits* s = scheme::find_scheme(type);
    const std::optional<uint64_t> row_bytes = dtype_row_bytes(type, static_cast<uint64_t>(n_in));
    if (!s || !s->dequantize_row || !row_bytes)
        return make_error(ErrorCode::kUnsupported,
                          "gptq --format gguf cannot produce type " + std::string(dtype_name(type)));
    std::vector<float> importance(static_cast<size_t>(n_in));
    for (int64_t c = 0; c < n_in; ++c) {
        const double d = h[static_cast<size_t>(c * n_in + c)];
        importance[static_cast<size_t>(c)] = static_cast<float>((d == 0.0 ? 1.0 : d) / 2.0);
    }
    std::vector<uint8_t> bytes(static_cast<size_t>(*row_bytes * static_cast<uint64_t>(n_out)));
    LOWBIT_TRY(kq::quantize_rows(type, w.data(), n_out, n_in, importance.data(), bytes.data()));
    dequant.resize(w.size());
    for (int64_t r = 0; r < n_out; ++r)
        s->dequantize_row(bytes.data() + static_cast<uint64_t>(r) * *row_bytes, dequant.data() + r * n_in, n_in);
    loss = 0.0;
    return bytes;
}

Result<QuantizeJobReport> quantize_gptq_to_gguf(const QuantizeJobOptions& job, const GptqJobOptions& gptq) {
    const auto t0 = Clock::now();
    LOWBIT_TRY(check_gguf_options(job, gptq));
    LOWBIT_ASSIGN_OR_RETURN(CalibratedSource src,
                            open_calibrated_source(job.input, "gptq --format gguf", gptq.calib, job.n_threads));

    GgufPrecompute precompute =
        [&](const std::vector<GgufPlannedTensor>& plan) -> Result<std::map<std::string, std::vector<uint8_t>>> {
        std::map<std::string, DType> types;
        for (const GgufPlannedTensor& t : plan) types[t.name] = t.type;
        std::map<std::string, std::vector<uint8_t>> out;
        std::map<std::string, int> n_per_type;
        GptqJobOptions o = gptq;
        o.quantize_linear = [&](const std::string& module, const std::vector<float>& w, int64_t n_out, int64_t n_in,
                                std::vector<double>&& h, double& loss) -> Result<std::vector<float>> {
            const std::optional<std::string> name = hf::hf_to_gguf_name(module + ".weight");
            const auto it = name ? types.find(*name) : types.end();
            if (it == types.end())
                return make_error(ErrorCode::kInternal, "no GGUF tensor planned for '" + module + ".weight'");
            if (!dtype_is_quantized(it->second)) { // the mix leaves it as is: nothing to calibrate
                loss = 0.0;
                return w;
            }
            std::vector<float> deq;
            LOWBIT_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes,
                                    gptq_gguf_linear(it->second, w, n_out, n_in, std::move(h), o, deq, loss));
            if (const int64_t heads = permute_heads(src.config, *name); heads > 0) {
                std::vector<uint8_t> permuted(bytes.size());
                if (!hf::permute_qk_rows(bytes.data(), permuted.data(), n_out, bytes.size() / size_t(n_out), heads))
                    return make_error(ErrorCode::kBadInput, fmt::format("tensor '{}' has {} rows, not a multiple of "
                                                                        "2 x {} heads",
                                                                        *name, n_out, heads));
                bytes.swap(permuted);
            }
            ++n_per_type[std::string(dtype_name(it->second))];
            out[*name] = std::move(bytes);
            return deq;
        };
        LOWBIT_ASSIGN_OR_RETURN(GptqModelResult r,
                                gptq_quantize_model(src.store, src.config, src.samples, o, &src.session->pool()));
        std::string types_used;
        for (const auto& [t, n] : n_per_type)
            types_used += fmt::format("{}{} x{}", types_used.empty() ? "" : ", ", t, n);
        double loss = 0.0;
        for (const auto& [m, l] : r.loss) loss += l;
        log_info("gptq: {} linears onto GGUF grids ({}), total loss {:.4g}; forward {:.2f} s, gptq {:.2f} s",
                 out.size(), types_used, loss, r.seconds_forward, r.seconds_gptq);
        return out;
    };
    QuantizeJobOptions plain = job;
    plain.method = job.method == "mix" ? "mix" : lower(job.gguf_type);
    LOWBIT_ASSIGN_OR_RETURN(QuantizeJobReport report, quantize_to_gguf(plain, precompute));
    report.method = "gptq/" + plain.method;
    report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return report;
}

} // namespace lowbit::pipeline
