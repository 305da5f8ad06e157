// SPDX-License-Identifier: MIT
// RoPE frequencies (see rope_freqs.h).
#include "model/rope_freqs.h"

#include <cmath>
#include <fmt/format.h>
#include <numbers>

namespace lowbit::model {
namespace {

// transformers/modeling_rope_utils.py::_compute_llama3_parameters, element-wise.
double llama3_scale(double inv_freq, const format::RopeScaling& s) {
    const double old_ctx = double(s.original_max_position_embeddings);
    const double low_freq_wavelen = old_ctx / s.low_freq_factor;
    const double high_freq_wavelen = old_ctx / s.high_freq_factor;
    const double wavelen = 2.0 * std::numbers::pi / inv_freq;
    if (wavelen > low_freq_wavelen) return inv_freq / s.factor;
    if (wavelen < high_freq_wavelen) return inv_freq;
    const double smooth = (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    return (1.0 - smooth) * inv_freq / s.factor + smooth * inv_freq;
}

} // namespace

Result<std::vector<float>> compute_inv_freq(const format::ModelConfig& c, const std::vector<float>& freq_factors) {
    const int64_t half = c.head_dim / 2;
    const auto& s = c.rope_scaling;
    const bool llama3 = freq_factors.empty() && s.type == "llama3";
    if (freq_factors.empty() && !s.type.empty() && s.type != "default" && s.type != "linear" && !llama3)
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("rope_scaling type '{}' is not supported (supported: llama3, linear)", s.type));
    if (llama3 && (s.original_max_position_embeddings <= 0 || !(s.factor > 0) ||
                   !(s.high_freq_factor > s.low_freq_factor) || !(s.low_freq_factor > 0)))
        return make_error(ErrorCode::kBadInput,
                          fmt::format("rope_scaling llama3: needs factor > 0, 0 < low_freq_factor < high_freq_factor "
                                      "and original_max_position_embeddings > 0 (got {}, {}, {}, {})",
                                      s.factor, s.low_freq_factor, s.high_freq_factor,
                                      s.original_max_position_embeddings));
    std::vector<float> out(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) {
        double f = std::pow(double(c.rope_theta), -double(2 * i) / double(c.head_dim));
        if (!freq_factors.empty()) {
            f /= double(freq_factors[size_t(i)]);
        } else if (llama3) {
            f = llama3_scale(f, s);
        } else if (s.type == "linear" && s.factor > 0) {
            f /= double(s.factor);
        }
        out[size_t(i)] = static_cast<float>(f);
    }
    return out;
}

} // namespace lowbit::model
