// SPDX-License-Identifier: MIT
#include "quantize/mix/sensitivity.h"

#include "core/thread_pool.h"
#include "quantize/kquant/imatrix.h"
#include "scheme/scheme_list.h"

#include <cstdio>
#include <fmt/format.h>
#include <map>
#include <vector>

namespace lowbit::quantize::mix {

Result<double> weighted_error(DType type, const float* w, int64_t n_rows, int64_t n_per_row, const float* importance) {
    const scheme::SchemeTraits* s = scheme::find_scheme(type);
    const auto row_bytes = dtype_row_bytes(type, static_cast<uint64_t>(n_per_row));
    if (!s || !s->dequantize_row || !row_bytes)
        return make_error(ErrorCode::kUnsupported,
                          fmt::format("cannot measure {} on rows of {} values", dtype_name(type), n_per_row));
    std::vector<uint8_t> q(static_cast<size_t>(*row_bytes * static_cast<uint64_t>(n_rows)));
    LOWBIT_TRY(kquant::quantize_rows(type, w, n_rows, n_per_row, importance, q.data()));
    std::vector<double> per_row(static_cast<size_t>(n_rows), 0.0);
    ThreadPool::global().parallel_for(n_rows, [&](int64_t begin, int64_t end, int) {
        std::vector<float> deq(static_cast<size_t>(n_per_row));
        for (int64_t r = begin; r < end; ++r) {
            s->dequantize_row(q.data() + static_cast<uint64_t>(r) * *row_bytes, deq.data(), n_per_row);
            const float* x = w + r * n_per_row;
            double e = 0.0;
            for (int64_t j = 0; j < n_per_row; ++j) {
                const double d = double(x[j]) - double(deq[static_cast<size_t>(j)]);
                e += (importance ? double(importance[j]) : 1.0) * d * d;
            }
            per_row[static_cast<size_t>(r)] = e;
        }
    });
    double total = 0.0;
    for (double e : per_row) total += e;
    return total;
}

double weighted_signal(const float* w, int64_t n_rows, int64_t n_per_row, const float* importance) {
    double total = 0.0;
    for (int64_t r = 0; r < n_rows; ++r)
        for (int64_t j = 0; j < n_per_row; ++j) {
            const double x = w[r * n_per_row + j];
            total += (importance ? double(importance[j]) : 1.0) * x * x;
        }
    return total;
}

std::optional<std::vector<double>> residual_factors(const std::vector<std::string>& names,
                                                    const std::vector<double>& signal) {
    struct Layer {
        double o = 0, down = 0;
    };
    std::map<int, Layer> layers;
    double embd = 0;
    std::vector<std::pair<int, std::string>> parsed(names.size(), {-1, ""});
    for (size_t i = 0; i < names.size(); ++i) {
        const std::string& n = names[i];
        if (n == "token_embd.weight") {
            embd = signal[i];
            parsed[i] = {-1, "token_embd"};
            continue;
        }
        if (n == "output.weight") {
            parsed[i] = {-1, "output"};
            continue;
        }
        int l = -1;
        char kind[32] = {0};
        if (std::sscanf(n.c_str(), "blk.%d.%31[a-z_].weight", &l, kind) != 2 || l < 0) return std::nullopt;
        const std::string k = kind;
        if (k != "attn_q" && k != "attn_k" && k != "attn_v" && k != "attn_output" && k != "ffn_gate" && k != "ffn_up" &&
            k != "ffn_down")
            return std::nullopt;
        if (n != fmt::format("blk.{}.{}.weight", l, k)) return std::nullopt;
        parsed[i] = {l, k};
        Layer& layer = layers[l]; // every layer seen needs both writers
        if (k == "attn_output") layer.o = signal[i];
        if (k == "ffn_down") layer.down = signal[i];
    }
    if (!(embd > 0)) return std::nullopt;
    std::map<int, std::pair<double, double>> r; // layer -> (R before attn_output, R before ffn_down)
    double acc = embd;
    for (const auto& [l, L] : layers) {
        if (!(L.o > 0) || !(L.down > 0)) return std::nullopt;
        r[l].first = acc;
        acc += L.o;
        r[l].second = acc;
        acc += L.down;
    }
    std::vector<double> f(names.size(), 1.0);
    for (size_t i = 0; i < names.size(); ++i) {
        const auto& [l, k] = parsed[i];
        if (k == "token_embd") {
            f[i] = 1.0 / embd;
        } else if (k == "output") {
            f[i] = 1.0 / acc;
        } else if (k == "attn_output") {
            f[i] = 1.0 / r[l].first;
        } else if (k == "ffn_down") {
            f[i] = 1.0 / r[l].second;
        } else {
            if (!(signal[i] > 0)) return std::nullopt;
            const bool attn = k.rfind("attn_", 0) == 0;
            f[i] = (attn ? layers[l].o / r[l].first : layers[l].down / r[l].second) / signal[i];
        }
    }
    return f;
}

} // namespace lowbit::quantize::mix
