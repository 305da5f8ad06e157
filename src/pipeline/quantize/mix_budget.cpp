// SPDX-License-Identifier: MIT
#include "pipeline/quantize/mix_budget.h"

#include "core/checked.h"
#include "core/file.h"
#include "core/log.h"
#include "core/progress.h"
#include "quantize/mix/budget.h"
#include "quantize/mix/sensitivity.h"
#include "scheme/scheme_list.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fmt/format.h>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace lowbit::pipeline {
namespace {

namespace kq = quantize::kquant;
namespace qm = quantize::mix;

int64_t n_elems_of(const kq::MixTensor& t) {
    int64_t n = 1;
    for (int64_t d : t.ne) n *= d;
    return n;
}

uint64_t align_up(uint64_t v, uint64_t a) {
    return a ? (v + a - 1) / a * a : v;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// "blk.3.ffn_down.weight" -> ("blk.3", "ffn_down"); others -> ("", name without ".weight").
std::pair<std::string, std::string> split_layer(const std::string& name) {
    std::string base = name;
    if (base.size() > 7 && base.substr(base.size() - 7) == ".weight") base.resize(base.size() - 7);
    if (base.rfind("blk.", 0) == 0) {
        const size_t dot = base.find('.', 4);
        if (dot != std::string::npos) return {base.substr(0, dot), base.substr(dot + 1)};
    }
    return {"", base};
}

} // namespace

Result<MixSensitivity> read_mix_sensitivity(const std::string& path) {
    LOWBIT_ASSIGN_OR_RETURN(const std::string text, read_file_to_string(path));
    const auto j = nlohmann::json::parse(text, nullptr, false);
    const auto bad = [&](const std::string& why) {
        return make_error(ErrorCode::kBadInput, "sensitivity file '" + path + "': " + why +
                                                    " (expected the --json of bench/mix_proxy_check.py)");
    };
    if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
    if (!j.contains("type") || !j["type"].is_string() || !j.contains("rows") || !j["rows"].is_array())
        return bad("no \"type\" string or \"rows\" array");
    MixSensitivity s;
    const std::optional<DType> t = dtype_from_name(j["type"].get<std::string>());
    if (!t || !dtype_is_quantized(*t)) return bad("\"type\" is not a GGUF block type");
    s.type = *t;
    const double floor = j.contains("floor") && j["floor"].is_number() ? j["floor"].get<double>() : 0.0;
    for (const auto& r : j["rows"]) {
        if (!r.is_object() || !r.contains("tensor") || !r["tensor"].is_string() || !r.contains("kld") ||
            !r["kld"].is_number())
            return bad("a row without \"tensor\" and \"kld\"");
        const double v = r["kld"].get<double>() - floor;
        if (!std::isfinite(v)) return bad("a non-finite kld");
        s.kld[r["tensor"].get<std::string>()] = std::max(v, 1e-7);
    }
    if (s.kld.empty()) return bad("no rows");
    return s;
}

std::vector<DType> default_mix_types() {
    return {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kQ8_0};
}

Result<std::vector<DType>> parse_mix_types(const std::string& list) {
    std::vector<DType> out;
    std::stringstream ss(list);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty()) continue;
        const std::optional<DType> t = dtype_from_name(item);
        const scheme::SchemeTraits* s = t ? scheme::find_scheme(*t) : nullptr;
        if (!t || !dtype_is_quantized(*t) || !s || !s->quantize_row || !s->dequantize_row)
            return make_error(ErrorCode::kUsage,
                              fmt::format("--types: '{}' is not a GGUF block type lowbit writes (q2_k, q3_k, q4_k, "
                                          "q5_k, q6_k, q4_0, q4_1, q5_0, q5_1, q8_0)",
                                          item));
        if (std::find(out.begin(), out.end(), *t) != out.end())
            return make_error(ErrorCode::kUsage, fmt::format("--types: '{}' is listed twice", item));
        out.push_back(*t);
    }
    if (out.empty()) return make_error(ErrorCode::kUsage, "--types needs at least one type, e.g. q3_k,q4_k,q6_k");
    return out;
}

Result<MixBudgetResult> plan_budget_mix(const GgufQuantSource& src, const std::vector<std::vector<float>>& importance,
                                        const MixBudgetRequest& req, bool progress) {
    if ((req.target_bpw > 0) == (req.target_file_bytes > 0))
        return make_error(ErrorCode::kUsage, "method 'mix' needs exactly one of --target-bpw B and --target-size S");
    const std::vector<DType> types = req.types.empty() ? default_mix_types() : req.types;
    const auto& ts = src.tensors();
    const bool by_file = req.target_file_bytes > 0;
    const auto stored = [&](uint64_t bytes) { return by_file ? align_up(bytes, req.alignment) : bytes; };

    int64_t n_params = 0;
    for (const auto& t : ts) n_params += n_elems_of(t);
    std::vector<qm::Item> items(ts.size());
    std::vector<bool> quantizable(ts.size());
    int64_t n_work = 0;
    for (size_t i = 0; i < ts.size(); ++i) {
        quantizable[i] = kq::allows_quantization(ts[i]);
        n_work += quantizable[i];
    }
    // The feasible range from the bytes alone, so an impossible budget is refused before any tensor is measured.
    qm::FeasibleRange range;
    for (size_t i = 0; i < ts.size(); ++i) {
        const int64_t ne0 = ts[i].ne.empty() ? 0 : ts[i].ne[0];
        const uint64_t n_rows = ne0 ? uint64_t(n_elems_of(ts[i]) / ne0) : 0;
        uint64_t lo = UINT64_MAX, hi = 0;
        const auto consider = [&](DType t) {
            const uint64_t b = stored(dtype_row_bytes(t, uint64_t(ne0)).value_or(0) * n_rows);
            lo = std::min(lo, b);
            hi = std::max(hi, b);
        };
        if (!quantizable[i]) {
            consider(ts[i].dtype);
        } else {
            for (DType type : types)
                if (ne0 % dtype_block_elems(type) == 0) consider(type);
            if (hi == 0) consider(DType::kF16);
        }
        range.min_bytes += lo;
        range.max_bytes += hi;
    }
    uint64_t budget = 0;
    if (by_file) {
        const uint64_t lo = range.min_bytes + req.header_bytes, hi = range.max_bytes + req.header_bytes;
        if (req.target_file_bytes < lo || req.target_file_bytes > hi)
            return make_error(ErrorCode::kUsage,
                              fmt::format("--target-size {} bytes ({:.2f} MiB) is outside the feasible range {} .. {} "
                                          "bytes ({:.2f} .. {:.2f} MiB) for types {}",
                                          req.target_file_bytes, double(req.target_file_bytes) / (1 << 20), lo, hi,
                                          double(lo) / (1 << 20), double(hi) / (1 << 20),
                                          fmt::join(
                                              [&] {
                                                  std::vector<std::string> v;
                                                  for (DType t : types) v.push_back(lower(dtype_name(t)));
                                                  return v;
                                              }(),
                                              ",")));
        budget = req.target_file_bytes - req.header_bytes;
    } else {
        const double lo = 8.0 * double(range.min_bytes) / double(n_params);
        const double hi = 8.0 * double(range.max_bytes) / double(n_params);
        budget = static_cast<uint64_t>(std::floor(req.target_bpw * double(n_params) / 8.0));
        if (budget < range.min_bytes || budget > range.max_bytes)
            return make_error(ErrorCode::kUsage,
                              fmt::format("--target-bpw {} is outside the feasible range {:.4f} .. {:.4f} bpw for "
                                          "this model and types {} (every tensor at the smallest .. largest type; "
                                          "norms and other unquantized tensors included)",
                                          req.target_bpw, std::ceil(lo * 1e4) / 1e4, std::floor(hi * 1e4) / 1e4,
                                          fmt::join(
                                              [&] {
                                                  std::vector<std::string> v;
                                                  for (DType t : types) v.push_back(lower(dtype_name(t)));
                                                  return v;
                                              }(),
                                              ",")));
    }
    ProgressBar bar("mix: sensitivity", n_work, progress && ProgressBar::stderr_is_terminal());
    bool warned_no_importance = false;
    std::vector<double> signal(ts.size(), 0.0);      // weighted_signal of each quantized tensor
    std::vector<double> ref_damage(ts.size(), -1.0); // raw proxy at the measured type (--sensitivity)
    for (size_t i = 0; i < ts.size(); ++i) {
        const kq::MixTensor& t = ts[i];
        qm::Item& item = items[i];
        item.name = t.name;
        const int64_t ne0 = t.ne.empty() ? 0 : t.ne[0];
        const int64_t n = n_elems_of(t);
        const int64_t n_rows = ne0 ? n / ne0 : 0;
        if (!quantizable[i]) {
            const std::optional<uint64_t> rb = dtype_row_bytes(t.dtype, static_cast<uint64_t>(ne0));
            item.candidates.push_back({t.dtype, stored(rb.value_or(0) * static_cast<uint64_t>(n_rows)), 0.0});
            continue;
        }
        bar.set_suffix(t.name);
        std::vector<float> w;
        LOWBIT_TRY(src.read_f32(i, w));
        const bool embd = t.name == "token_embd.weight";
        const float* imp = importance.size() > i && !importance[i].empty() ? importance[i].data() : nullptr;
        if (!imp && !embd && !importance.empty() && !warned_no_importance) {
            log_warn("mix: no imatrix entry for '{}' (and maybe others): its sensitivity assumes inputs of unit "
                     "mean square",
                     t.name);
            warned_no_importance = true;
        }
        // A row of the embedding is read once per token that uses it: per token, the error is the mean over
        // rows (uniform token frequency); a linear layer's error is already per token (imatrix = mean x^2).
        const double scale = embd && n_rows > 0 ? 1.0 / double(n_rows) : 1.0;
        for (DType type : types) {
            if (ne0 % dtype_block_elems(type) != 0) continue; // llama.cpp would fall back; we just skip it
            LOWBIT_ASSIGN_OR_RETURN(const double err,
                                    qm::weighted_error(type, w.data(), n_rows, ne0, embd ? nullptr : imp));
            const uint64_t bytes = *dtype_row_bytes(type, static_cast<uint64_t>(ne0)) * static_cast<uint64_t>(n_rows);
            item.candidates.push_back({type, stored(bytes), err * scale});
        }
        if (item.candidates.empty()) { // no candidate block fits the rows: F16, llama.cpp's last fallback
            item.candidates.push_back(
                {DType::kF16, stored(*dtype_row_bytes(DType::kF16, uint64_t(ne0)) * uint64_t(n_rows)), 0.0});
        }
        signal[i] = qm::weighted_signal(w.data(), n_rows, ne0, embd ? nullptr : imp) * scale;
        if (req.sensitivity && req.sensitivity->kld.count(t.name) &&
            ne0 % dtype_block_elems(req.sensitivity->type) == 0) {
            LOWBIT_ASSIGN_OR_RETURN(const double ref, qm::weighted_error(req.sensitivity->type, w.data(), n_rows, ne0,
                                                                         embd ? nullptr : imp));
            ref_damage[i] = ref * scale;
        }
        bar.tick();
    }
    bar.finish();
    // Where the error lands in the residual stream (quantize/mix/sensitivity.h): the proxy scaled per tensor.
    std::vector<std::string> q_names;
    std::vector<double> q_signal;
    std::vector<size_t> q_index;
    for (size_t i = 0; i < ts.size(); ++i)
        if (quantizable[i]) q_names.push_back(ts[i].name), q_signal.push_back(signal[i]), q_index.push_back(i);
    const std::optional<std::vector<double>> factors = qm::residual_factors(q_names, q_signal);
    if (!factors)
        log_info("mix: tensor names outside token_embd/attn_*/ffn_*/output: the proxy is not scaled to the residual "
                 "stream");
    std::vector<double> gains;      // measured KLD / proxy of the measured tensors
    std::vector<size_t> unmeasured; // quantized tensors the sensitivity file lacks
    for (size_t k = 0; k < q_index.size(); ++k) {
        const size_t i = q_index[k];
        const double f = factors ? (*factors)[k] : 1.0;
        for (qm::Candidate& c : items[i].candidates) c.damage *= f;
        if (!req.sensitivity) continue;
        const auto it = req.sensitivity->kld.find(ts[i].name);
        if (it == req.sensitivity->kld.end()) {
            unmeasured.push_back(i);
        } else if (ref_damage[i] >= 0) { // calibrated: damage(T) = proxy(T) * measured / proxy(measured type)
            const double ref = ref_damage[i] * f;
            const double gain = ref > 0 ? it->second / ref : 0.0;
            gains.push_back(gain);
            for (qm::Candidate& c : items[i].candidates) c.damage *= gain;
        }
    }
    if (req.sensitivity) { // tensors without a measurement: the median gain of the measured ones
        std::vector<double> g = gains;
        std::sort(g.begin(), g.end());
        const double median = g.empty() ? 1.0 : g[g.size() / 2];
        for (size_t i : unmeasured) {
            for (qm::Candidate& c : items[i].candidates) c.damage *= median;
        }
        if (!unmeasured.empty())
            log_warn("mix: {} tensor(s) have no measured sensitivity (e.g. '{}'): using the median gain",
                     unmeasured.size(), ts[unmeasured.front()].name);
    }

    LOWBIT_ASSIGN_OR_RETURN(const qm::Allocation a, qm::allocate(items, budget));

    MixBudgetResult r;
    r.plan.types.resize(ts.size());
    r.predicted_damage = a.damage;
    // Summary: per layer the chosen type of each tensor and the layer's bpw; then counts per type.
    std::map<std::string, std::pair<int64_t, uint64_t>> per_layer; // elems, bytes
    std::map<std::string, std::string> layer_types;
    std::map<std::string, int> count;
    for (size_t i = 0; i < ts.size(); ++i) {
        const qm::Candidate& c = items[i].candidates[a.choice[i]];
        r.plan.types[i] = c.type;
        const int64_t ne0 = ts[i].ne.empty() ? 0 : ts[i].ne[0];
        const uint64_t raw =
            dtype_row_bytes(c.type, uint64_t(ne0)).value_or(0) * uint64_t(ne0 ? n_elems_of(ts[i]) / ne0 : 0);
        r.tensor_bytes += raw;
        if (!quantizable[i]) continue;
        const auto [layer, short_name] = split_layer(ts[i].name);
        const std::string key = layer.empty() ? short_name : layer;
        per_layer[key].first += n_elems_of(ts[i]);
        per_layer[key].second += raw;
        layer_types[key] += fmt::format("{}{}={}", layer_types[key].empty() ? "" : " ",
                                        layer.empty() ? short_name : short_name, lower(dtype_name(c.type)));
        count[lower(dtype_name(c.type))] += 1;
    }
    std::vector<size_t> order = kq::llama_tensor_order(ts);
    std::vector<std::string> keys;
    for (size_t i : order) {
        if (!quantizable[i]) continue;
        const auto [layer, short_name] = split_layer(ts[i].name);
        const std::string key = layer.empty() ? short_name : layer;
        if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    }
    std::string s = "mix allocation (quantized tensors; bpw of each layer's weights):\n";
    for (const std::string& k : keys)
        s += fmt::format("  {:<12} {:6.3f} bpw  {}\n", k,
                         8.0 * double(per_layer[k].second) / double(std::max<int64_t>(1, per_layer[k].first)),
                         layer_types[k]);
    std::string counts;
    for (const auto& [t, c] : count) counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", c, t);
    s += fmt::format("  types: {}; predicted damage ({}) {:.6g}; budget {} bytes of tensors, used {}\n", counts,
                     req.sensitivity ? "sum of calibrated single-tensor KLDs"
                     : factors       ? "imatrix-weighted squared error relative to the residual stream"
                                     : "imatrix-weighted squared error",
                     a.damage, budget, a.bytes);
    r.summary = std::move(s);
    nlohmann::json j = {{"budget_bytes", budget}, {"used_bytes", a.bytes}, {"damage", a.damage},
                        {"n_params", n_params},   {"by_file", by_file},    {"header_bytes", req.header_bytes}};
    nlohmann::json tensors = nlohmann::json::array();
    for (size_t i = 0; i < ts.size(); ++i) {
        nlohmann::json cands = nlohmann::json::array();
        for (const qm::Candidate& c : items[i].candidates)
            cands.push_back({{"type", lower(dtype_name(c.type))}, {"bytes", c.bytes}, {"damage", c.damage}});
        tensors.push_back({{"name", ts[i].name},
                           {"n_elems", n_elems_of(ts[i])},
                           {"quantized", bool(quantizable[i])},
                           {"chosen", lower(dtype_name(r.plan.types[i]))},
                           {"candidates", cands}});
    }
    j["tensors"] = tensors;
    r.json = j.dump(1);
    return r;
}

kq::FileType mix_file_type(const GgufQuantSource& src, const kq::MixPlan& plan) {
    std::map<DType, int64_t> elems;
    for (size_t i = 0; i < plan.types.size(); ++i)
        if (dtype_is_quantized(plan.types[i])) elems[plan.types[i]] += n_elems_of(src.tensors()[i]);
    DType top = DType::kF32;
    int64_t most = -1;
    for (const auto& [t, n] : elems)
        if (n > most) most = n, top = t;
    // The file type named after the most-used type (kquant's own mapping, default_dtype; the _M mixes first).
    for (kq::FileType ft :
         {kq::FileType::kQ2_K, kq::FileType::kQ3_K_M, kq::FileType::kQ4_K_M, kq::FileType::kQ5_K_M, kq::FileType::kQ6_K,
          kq::FileType::kQ8_0, kq::FileType::kQ4_0, kq::FileType::kQ4_1, kq::FileType::kQ5_0, kq::FileType::kQ5_1})
        if (kq::default_dtype(ft) == top) return ft;
    return kq::FileType::kF16;
}

} // namespace lowbit::pipeline
