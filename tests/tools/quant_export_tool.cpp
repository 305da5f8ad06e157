// SPDX-License-Identifier: MIT
// Test tool: writes an AutoAWQ GEMM or HF GPTQ checkpoint of a float HF model with plain round-to-nearest (AutoAWQ's
// / AutoGPTQ's own quantizer formulas, no calibration) through lowbit's exporters, then reads it back through the
// loader table and writes lowbit's dequantized Linear weights, so tests/oracle/test_awq_export.py and
// bench/oracle_awq_gptq_device.py can compare them with the Python tools' unpacking. Usage:
//   quant_export_tool MODE SRC_DIR OUT_DIR DEQ_FILE GROUP [--fold]
//   MODE: awq | gptq-v1 | gptq-v2 | gptq-v1-asym | gptq-v2-asym (4-bit)
//   --fold (awq): scales input channels of q/k/v by s[k] = 1 + 0.5 sin(k) and divides input_layernorm by s, as
//   AWQ's scale folding does (the float model's function is unchanged), so the export carries replaced tensors.
//   DEQ_FILE: safetensors, "<module>.weight" f32 [N, K] for every quantized Linear (what the runtime multiplies by).
//   quant_export_tool deq DIR DEQ_FILE: only the last step, for a checkpoint written elsewhere (lowbit quantize).
#include "core/half.h"
#include "format/hf/config.h"
#include "format/safetensors/safetensors_reader.h"
#include "format/safetensors/safetensors_writer.h"
#include "model/quantized/quant_loader.h"
#include "pipeline/quantize/awq_export.h"
#include "pipeline/quantize/gptq_job.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using namespace lowbit;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "quant_export_tool: %s\n", what.c_str());
    std::exit(1);
}

std::vector<float> to_f32(const TensorView& v) {
    std::vector<float> out(size_t(v.n_elems()));
    const auto* h = static_cast<const uint16_t*>(v.data);
    for (size_t i = 0; i < out.size(); ++i) {
        if (v.dtype == DType::kF32)
            out[i] = static_cast<const float*>(v.data)[i];
        else if (v.dtype == DType::kF16)
            out[i] = f16_to_f32(h[i]);
        else if (v.dtype == DType::kBF16)
            out[i] = bf16_to_f32(h[i]);
        else
            die("unsupported source dtype");
    }
    return out;
}

// AutoAWQ pseudo_quantize_tensor (zero_point=True).
scheme::awq::AwqLinear awq_rtn(const std::vector<float>& w, int64_t n_out, int64_t n_in, int64_t g) {
    scheme::awq::AwqLinear l;
    l.n_out = n_out, l.n_in = n_in, l.group_size = g;
    l.codes.resize(w.size());
    for (int64_t n = 0; n < n_out; ++n)
        for (int64_t k0 = 0; k0 < n_in; k0 += g) {
            const float* row = w.data() + n * n_in + k0;
            const float lo = *std::min_element(row, row + g), hi = *std::max_element(row, row + g);
            const float scale = std::max((hi - lo) / 15.0f, 1e-5f);
            const int zero = std::clamp(-int(std::nearbyint(lo / scale)), 0, 15);
            l.scales.push_back(scale), l.zeros.push_back(zero);
            for (int64_t j = 0; j < g; ++j)
                l.codes[size_t(n * n_in + k0 + j)] = std::clamp(int(std::nearbyint(row[j] / scale)) + zero, 0, 15);
        }
    return l;
}

// AutoGPTQ Quantizer.find_params + quantize (4-bit): sym zero 8, asym zero = round(-min/scale), min <= 0 <= max.
scheme::gptq::GptqLinear gptq_rtn(const std::vector<float>& w, int64_t n_out, int64_t n_in, int64_t g, bool sym) {
    scheme::gptq::GptqLinear l;
    l.bits = 4, l.n_out = n_out, l.n_in = n_in, l.n_groups = n_in / g;
    l.codes.resize(w.size());
    for (int64_t n = 0; n < n_out; ++n)
        for (int64_t k0 = 0; k0 < n_in; k0 += g) {
            const float* row = w.data() + n * n_in + k0;
            float lo = std::min(0.0f, *std::min_element(row, row + g));
            float hi = std::max(0.0f, *std::max_element(row, row + g));
            if (sym) {
                hi = std::max(-lo, hi);
                if (lo < 0) lo = -hi;
            }
            if (lo == 0 && hi == 0) lo = -1, hi = 1;
            const float scale = (hi - lo) / 15.0f;
            const int zero = sym ? 8 : int(std::nearbyint(-lo / scale));
            l.scales.push_back(scale), l.zeros.push_back(zero);
            for (int64_t j = 0; j < g; ++j)
                l.codes[size_t(n * n_in + k0 + j)] = std::clamp(int(std::nearbyint(row[j] / scale)) + zero, 0, 15);
        }
    for (int64_t k = 0; k < n_in; ++k) l.g_idx.push_back(int32_t(k / g));
    return l;
}

bool is_linear(const std::string& name) {
    return name.size() > 12 && name.compare(name.size() - 12, 12, "_proj.weight") == 0;
}

void write_dequantized(const std::string& out_dir, const std::string& deq_file, const std::vector<std::string>& mods) {
    auto st = safetensors::Store::open(out_dir);
    if (!st.ok()) die(st.error().message);
    std::shared_ptr<const format::TensorStore> base(std::move(*st));
    auto q = model::quantized::wrap_quantized_dir(base, out_dir, format::ModelConfig{}, /*dequantize_all=*/true);
    if (!q.ok()) die(q.error().message);
    std::vector<safetensors::TensorToWrite> out;
    for (const auto& m : mods) {
        auto v = (*q)->view(m + ".weight");
        if (!v.ok() || v->dtype != DType::kF32) die("no dequantized " + m);
        out.push_back({m + ".weight", DType::kF32, v->shape, v->data, {}});
    }
    auto w = safetensors::write_safetensors(deq_file, out);
    if (!w.ok()) die(w.error().message);
}

} // namespace

int main(int argc, char** argv) {
    if (argc == 4 && std::string(argv[1]) == "deq") {
        auto st = safetensors::Store::open(argv[2]);
        if (!st.ok()) die(st.error().message);
        std::vector<std::string> mods;
        for (const auto& info : (*st)->tensors())
            if (info.name.ends_with(".qweight")) mods.push_back(info.name.substr(0, info.name.size() - 8));
        write_dequantized(argv[2], argv[3], mods);
        return 0;
    }
    if (argc < 6) {
        std::fprintf(stderr, "usage: quant_export_tool awq|gptq-v1|gptq-v2|gptq-v1-asym|gptq-v2-asym SRC OUT DEQ "
                             "GROUP [--fold]\n");
        return 2;
    }
    const std::string mode = argv[1], src = argv[2], out = argv[3], deq = argv[4];
    const int64_t group = std::atoll(argv[5]);
    const bool fold = argc > 6 && std::string(argv[6]) == "--fold";
    auto st = safetensors::Store::open(src); // a file, an index or a directory
    if (!st.ok()) die(st.error().message);
    const format::TensorStore& store = **st;
    std::map<std::string, std::vector<float>> replaced;
    std::map<std::string, scheme::awq::AwqLinear> awq;
    pipeline::GptqModelResult gptq;
    std::vector<std::string> mods;
    const bool sym = mode.find("asym") == std::string::npos;
    for (const auto& info : store.tensors()) {
        if (!is_linear(info.name) || info.shape.n_dims != 2) continue;
        const std::string m = info.name.substr(0, info.name.size() - 7);
        auto v = store.view(info.name);
        if (!v.ok()) die(v.error().message);
        std::vector<float> w = to_f32(*v);
        const int64_t n = info.shape[0], k = info.shape[1];
        const bool scaled = fold && (m.ends_with("q_proj") || m.ends_with("k_proj") || m.ends_with("v_proj"));
        if (scaled)
            for (int64_t r = 0; r < n; ++r)
                for (int64_t c = 0; c < k; ++c) w[size_t(r * k + c)] *= 1.0f + 0.5f * std::sin(float(c));
        if (mode == "awq")
            awq[m] = awq_rtn(w, n, k, group);
        else
            gptq.linears[m] = gptq_rtn(w, n, k, group, sym);
        mods.push_back(m);
    }
    if (fold)
        for (const auto& info : store.tensors()) {
            if (!info.name.ends_with("input_layernorm.weight")) continue;
            auto v = store.view(info.name);
            if (!v.ok()) die(v.error().message);
            std::vector<float> norm = to_f32(*v);
            for (size_t c = 0; c < norm.size(); ++c) norm[c] /= 1.0f + 0.5f * std::sin(float(c));
            replaced[info.name] = norm;
        }
    pipeline::QuantizeJobReport report;
    Status s;
    if (mode == "awq") {
        pipeline::AwqExportOptions o;
        o.group_size = group;
        o.calib.source = "none (round to nearest)";
        s = pipeline::write_awq_checkpoint(out, src, store, awq, replaced, o, report);
    } else if (mode.starts_with("gptq-v")) {
        pipeline::GptqJobOptions o;
        o.bits = 4, o.group_size = group, o.sym = sym, o.gptq_v2 = mode.starts_with("gptq-v2");
        o.calib.source = "none (round to nearest)";
        s = pipeline::write_gptq_checkpoint(out, src, store, gptq, o, report);
    } else {
        die("unknown mode '" + mode + "'");
    }
    if (!s.ok()) die(s.error().message);
    write_dequantized(out, deq, mods);
    std::printf("%s: %zu linears, %.4f bpw\n", mode.c_str(), mods.size(), report.bpw());
    return 0;
}
