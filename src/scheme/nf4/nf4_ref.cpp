// SPDX-License-Identifier: MIT
// NF4/FP4 reference quantize and dequantize, written from bitsandbytes' default backend
// (backends/default/ops.py quantize_4bit, quantize_blockwise) and functional.py (quantize_4bit, create_dynamic_map):
//   absmax[b] = max |x| over the block (f32);  s = clamp(x * (1 / absmax[b]), -1, 1) in f32
//   q = argmin_i |s - code[i]| in f32, first index on ties (torch.argmin); a NaN s (all-zero block) gives 0.
// Double quant: offset = mean(absmax) (accumulated in f64, rounded to f32: torch's f32 reduction order can differ
// by an ulp), then the same blockwise rule with the 256-entry dynamic map and blocks of 256.
#include "scheme/nf4/nf4.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>

namespace lowbit::scheme::nf4 {
namespace {

// bitsandbytes get_4bit_type("nf4"): normal-distribution quantiles (create_normal_map(offset=0.9677083)).
constexpr std::array<float, 16> kNf4 = {-1.0f,
                                        -0.6961928009986877f,
                                        -0.5250730514526367f,
                                        -0.39491748809814453f,
                                        -0.28444138169288635f,
                                        -0.18477343022823334f,
                                        -0.09105003625154495f,
                                        0.0f,
                                        0.07958029955625534f,
                                        0.16093020141124725f,
                                        0.24611230194568634f,
                                        0.33791524171829224f,
                                        0.44070982933044434f,
                                        0.5626170039176941f,
                                        0.7229568362236023f,
                                        1.0f};

// get_4bit_type("fp4"): E2M1 with bias 2 by bit pattern, divided by the max (12).
std::array<float, 16> make_fp4() {
    const float raw[16] = {0.0f,  0.0625f,  8.0f,  12.0f,  4.0f,  6.0f,  2.0f,  3.0f,
                           -0.0f, -0.0625f, -8.0f, -12.0f, -4.0f, -6.0f, -2.0f, -3.0f};
    std::array<float, 16> t{};
    for (int i = 0; i < 16; ++i) t[size_t(i)] = raw[i] / 12.0f;
    return t;
}

// torch.linspace(start, end, steps) for float32 on CPU, scalar path: start + step*i below steps/2,
// end - step*(steps-1-i) above (the vectorized path agrees for the sizes used here; checked against torch).
std::vector<float> linspace_f32(float start, float end, int64_t steps) {
    std::vector<float> v(static_cast<size_t>(steps));
    const float step = (end - start) / float(steps - 1);
    for (int64_t i = 0; i < steps; ++i)
        v[size_t(i)] = i < steps / 2 ? start + step * float(i) : end - step * float(steps - 1 - i);
    return v;
}

// create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8).
std::array<float, 256> make_dynamic_map() {
    std::vector<float> data;
    const int max_exponent_bits = 7;
    for (int i = 0; i < max_exponent_bits; ++i) {
        const int64_t fraction_items = (int64_t(1) << i) + 1;
        const std::vector<float> b = linspace_f32(0.1f, 1.0f, fraction_items);
        const float scale = float(std::pow(10.0, double(-(max_exponent_bits - 1) + i)));
        for (size_t j = 0; j + 1 < b.size(); ++j) {
            const float mean = (b[j] + b[j + 1]) / 2.0f;
            data.push_back(scale * mean);
            data.push_back(-scale * mean);
        }
    }
    data.push_back(0.0f);
    data.push_back(1.0f);
    std::sort(data.begin(), data.end());
    std::array<float, 256> out{};
    std::copy(data.begin(), data.end(), out.begin());
    return out;
}

// argmin_i |s[e] - code[i]| for a run of values (loop over codes outside so the inner loop vectorizes).
template <size_t N> void nearest_codes(const float* s, int64_t n, const std::array<float, N>& code, uint8_t* q) {
    constexpr int64_t kChunk = 256;
    float best[kChunk];
    for (int64_t base = 0; base < n; base += kChunk) {
        const int64_t m = std::min(kChunk, n - base);
        for (int64_t e = 0; e < m; ++e) {
            best[e] = std::numeric_limits<float>::infinity();
            q[base + e] = 0;
        }
        for (size_t i = 0; i < N; ++i) {
            const float c = code[i];
            for (int64_t e = 0; e < m; ++e) {
                const float d = std::fabs(s[base + e] - c);
                const bool better = d < best[e]; // strict: the first minimal index wins, NaN never wins
                best[e] = better ? d : best[e];
                q[base + e] = better ? uint8_t(i) : q[base + e];
            }
        }
    }
}

// bitsandbytes quantize_blockwise / the first half of quantize_4bit: absmax per block and scaled values.
template <size_t N>
void quantize_blocks(const float* x, int64_t n, int64_t block, const std::array<float, N>& code, float* absmax,
                     uint8_t* q) {
    std::vector<float> s(static_cast<size_t>(block));
    for (int64_t b0 = 0, bi = 0; b0 < n; b0 += block, ++bi) {
        const int64_t m = std::min(block, n - b0);
        float amax = 0.0f;
        for (int64_t e = 0; e < m; ++e) amax = std::max(amax, std::fabs(x[b0 + e]));
        absmax[bi] = amax;
        const float inv = 1.0f / amax;
        // 0 * inf is NaN (all-zero block); std::clamp keeps the NaN, which maps to code 0 as in torch.
        for (int64_t e = 0; e < m; ++e) s[size_t(e)] = std::clamp(x[b0 + e] * inv, -1.0f, 1.0f);
        nearest_codes(s.data(), m, code, q + b0);
    }
}

} // namespace

const char* quant_type_name(QuantType t) {
    return t == QuantType::kNf4 ? "nf4" : "fp4";
}

const std::array<float, 16>& code_table(QuantType t) {
    static const std::array<float, 16> fp4 = make_fp4();
    return t == QuantType::kNf4 ? kNf4 : fp4;
}

const std::array<float, 256>& dynamic_map_signed() {
    static const std::array<float, 256> map = make_dynamic_map();
    return map;
}

Status validate(const Nf4Params& p) {
    const int64_t b = p.block_size;
    if (b < 32 || b > 4096 || (b & (b - 1)) != 0)
        return make_error(ErrorCode::kUsage,
                          fmt::format("bitsandbytes 4-bit block size must be a power of two in [32, 4096], got {}", b));
    if (p.torch_dtype != "float16" && p.torch_dtype != "bfloat16" && p.torch_dtype != "float32")
        return make_error(ErrorCode::kUsage, fmt::format("bitsandbytes quant state dtype must be float16, bfloat16 "
                                                         "or float32, got '{}'",
                                                         p.torch_dtype));
    return ok_status();
}

Result<Nf4Tensor> quantize(const float* w, const Shape& shape, const Nf4Params& params) {
    LOWBIT_TRY(validate(params));
    const int64_t n = shape.n_elems();
    if (shape.n_dims == 0 || n <= 0)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("cannot 4-bit quantize an empty tensor {}", shape.to_string()));
    for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(w[i]))
            return make_error(ErrorCode::kBadInput,
                              fmt::format("weight element {} is {} (4-bit quantization needs finite values)", i, w[i]));
    Nf4Tensor t;
    t.params = params;
    t.shape = shape;
    t.code = code_table(params.quant_type);
    const int64_t n_blocks = t.n_blocks();
    std::vector<float> absmax(static_cast<size_t>(n_blocks));
    std::vector<uint8_t> q(size_t(n + 1), 0); // odd n: the pad element is 0 (torch pads the scaled value 0.0)
    quantize_blocks(w, n, params.block_size, t.code, absmax.data(), q.data());
    if (n % 2 == 1) { // bitsandbytes pads the scaled tensor with 0.0 and quantizes it like any value
        const float zero = 0.0f;
        nearest_codes(&zero, 1, t.code, &q[size_t(n)]);
    }
    t.packed.resize(size_t((n + 1) / 2));
    for (int64_t i = 0; i < (n + 1) / 2; ++i)
        t.packed[size_t(i)] = uint8_t((q[size_t(2 * i)] << 4) | q[size_t(2 * i + 1)]);
    if (!params.double_quant) {
        t.absmax = std::move(absmax);
        return t;
    }
    double sum = 0.0;
    for (float a : absmax) sum += double(a);
    t.offset = float(sum / double(n_blocks));
    std::vector<float> centered(absmax.size());
    for (size_t i = 0; i < absmax.size(); ++i) centered[i] = absmax[i] - t.offset;
    t.nested_code = dynamic_map_signed();
    t.nested_absmax.resize(size_t((n_blocks + kNestedBlockSize - 1) / kNestedBlockSize));
    t.absmax_q.resize(size_t(n_blocks));
    quantize_blocks(centered.data(), n_blocks, kNestedBlockSize, t.nested_code, t.nested_absmax.data(),
                    t.absmax_q.data());
    return t;
}

std::vector<float> block_absmax(const Nf4Tensor& t) {
    if (!t.params.double_quant) return t.absmax;
    std::vector<float> a(t.absmax_q.size());
    for (size_t i = 0; i < a.size(); ++i)
        a[i] = t.nested_code[t.absmax_q[i]] * t.nested_absmax[i / size_t(kNestedBlockSize)] + t.offset;
    return a;
}

void dequantize(const Nf4Tensor& t, float* out) {
    const std::vector<float> absmax = block_absmax(t);
    const int64_t n = t.n_elems();
    const int64_t bs = t.params.block_size;
    for (int64_t i = 0; i < n; ++i) {
        const uint8_t byte = t.packed[size_t(i / 2)];
        const uint8_t q = (i % 2 == 0) ? uint8_t(byte >> 4) : uint8_t(byte & 0x0f);
        out[i] = t.code[q] * absmax[size_t(i / bs)];
    }
}

} // namespace lowbit::scheme::nf4
