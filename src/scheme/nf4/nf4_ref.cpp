// SPDX-License-Identifier: MIT
// NF4/FP4 reference quantize and dequantize, written from bitsandbytes' default backend
// (backends/default/ops.py quantize_4bit, quantize_blockwise) and functional.py (quantize_4bit, create_dynamic_map):
// the midpoint/bucketize rule of bitsandbytes >= 0.49 (see Bucketizer below; the older argmin rule differs
// only for values exactly on a midpoint). Verified bit-exact against bitsandbytes 0.50.2 on CPU.
// Double quant: offset = mean(absmax) (accumulated in f64, rounded to f32: torch's f32 reduction order can differ
// by an ulp), then the same blockwise rule with the 256-entry dynamic map and blocks of 256.
#include "core/finite.h"
#include "core/thread_pool.h"
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

// get_4bit_type("fp4"): E2M1 with bias 2 by bit pattern, divided by the max (12). Entry 8 ("-0") is +0.0:
// bitsandbytes writes it as the Python int -0, which is 0.
std::array<float, 16> make_fp4() {
    const float raw[16] = {0.0f, 0.0625f,  8.0f,  12.0f,  4.0f,  6.0f,  2.0f,  3.0f,
                           0.0f, -0.0625f, -8.0f, -12.0f, -4.0f, -6.0f, -2.0f, -3.0f};
    std::array<float, 16> t{};
    for (int i = 0; i < 16; ++i) t[size_t(i)] = raw[i] / 12.0f;
    return t;
}

// create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8) as bitsandbytes 0.50.2 produces it with
// torch 2.x on an AVX-512 CPU: 127 positive and 127 negative values 10^(i-6) * mean(linspace(0.1, 1, 2^i + 1))
// pairs for i = 0..6, plus 0 and 1, sorted. Copied as exact f32 values because torch.linspace's vectorized
// path rounds differently from the formula by an ulp for some entries (and by CPU vector width); files
// always carry their own nested_quant_map, which dequantization uses.
constexpr std::array<float, 256> kDynamicMapSigned = {
    -0x1.fc6666p-1f,  -0x1.f53334p-1f,  -0x1.ee0000p-1f,  -0x1.e6ccccp-1f,  -0x1.df999ap-1f,  -0x1.d86666p-1f,
    -0x1.d13334p-1f,  -0x1.ca0000p-1f,  -0x1.c2ccccp-1f,  -0x1.bb999ap-1f,  -0x1.b46666p-1f,  -0x1.ad3334p-1f,
    -0x1.a60000p-1f,  -0x1.9eccccp-1f,  -0x1.97999ap-1f,  -0x1.906666p-1f,  -0x1.893334p-1f,  -0x1.820000p-1f,
    -0x1.7accccp-1f,  -0x1.73999ap-1f,  -0x1.6c6668p-1f,  -0x1.653334p-1f,  -0x1.5e0000p-1f,  -0x1.56ccccp-1f,
    -0x1.4f999ap-1f,  -0x1.486668p-1f,  -0x1.413334p-1f,  -0x1.3a0000p-1f,  -0x1.32ccccp-1f,  -0x1.2b999ap-1f,
    -0x1.246668p-1f,  -0x1.1d3334p-1f,  -0x1.160000p-1f,  -0x1.0eccccp-1f,  -0x1.079998p-1f,  -0x1.006666p-1f,
    -0x1.f26664p-2f,  -0x1.e40000p-2f,  -0x1.d59998p-2f,  -0x1.c73334p-2f,  -0x1.b8ccccp-2f,  -0x1.aa6666p-2f,
    -0x1.9c0000p-2f,  -0x1.8d9998p-2f,  -0x1.7f3334p-2f,  -0x1.70ccccp-2f,  -0x1.626666p-2f,  -0x1.540000p-2f,
    -0x1.459998p-2f,  -0x1.373334p-2f,  -0x1.28ccccp-2f,  -0x1.1a6668p-2f,  -0x1.0c0000p-2f,  -0x1.fb3332p-3f,
    -0x1.de6666p-3f,  -0x1.c1999ap-3f,  -0x1.a4ccccp-3f,  -0x1.880000p-3f,  -0x1.6b3334p-3f,  -0x1.4e6666p-3f,
    -0x1.31999ap-3f,  -0x1.14ccccp-3f,  -0x1.f00000p-4f,  -0x1.b66668p-4f,  -0x1.93d70ap-4f,  -0x1.8851eep-4f,
    -0x1.7ccccep-4f,  -0x1.7147aep-4f,  -0x1.65c290p-4f,  -0x1.5a3d70p-4f,  -0x1.4eb854p-4f,  -0x1.433334p-4f,
    -0x1.37ae14p-4f,  -0x1.2c28f6p-4f,  -0x1.20a3d6p-4f,  -0x1.151ebap-4f,  -0x1.09999ap-4f,  -0x1.fc28f6p-5f,
    -0x1.e51ebap-5f,  -0x1.ce147ap-5f,  -0x1.b70a3ep-5f,  -0x1.a00000p-5f,  -0x1.88f5c2p-5f,  -0x1.71eb86p-5f,
    -0x1.5ae146p-5f,  -0x1.43d70ap-5f,  -0x1.2ccccep-5f,  -0x1.15c290p-5f,  -0x1.fd70a4p-6f,  -0x1.cf5c2ap-6f,
    -0x1.a147aep-6f,  -0x1.733334p-6f,  -0x1.451ebap-6f,  -0x1.170a3ep-6f,  -0x1.d1eb86p-7f,  -0x1.75c290p-7f,
    -0x1.3e76c8p-7f,  -0x1.2c0830p-7f,  -0x1.19999ap-7f,  -0x1.072b02p-7f,  -0x1.e978d4p-8f,  -0x1.c49ba6p-8f,
    -0x1.9fbe76p-8f,  -0x1.7ae148p-8f,  -0x1.56041ap-8f,  -0x1.3126e8p-8f,  -0x1.0c49bap-8f,  -0x1.ced914p-9f,
    -0x1.851eb8p-9f,  -0x1.3b645ap-9f,  -0x1.e353f8p-10f, -0x1.4fdf3ap-10f, -0x1.eecbfep-11f, -0x1.b3d07cp-11f,
    -0x1.78d500p-11f, -0x1.3dd982p-11f, -0x1.02de02p-11f, -0x1.8fc506p-12f, -0x1.19ce0ap-12f, -0x1.47ae16p-13f,
    -0x1.743e96p-14f, -0x1.15df66p-14f, -0x1.6f0068p-15f, -0x1.64840cp-16f, -0x1.040bfep-17f, -0x1.b43528p-19f,
    -0x1.27476ep-21f, 0x0.0p+0f,        0x1.27476ep-21f,  0x1.b43528p-19f,  0x1.040bfep-17f,  0x1.64840cp-16f,
    0x1.6f0068p-15f,  0x1.15df66p-14f,  0x1.743e96p-14f,  0x1.47ae16p-13f,  0x1.19ce0ap-12f,  0x1.8fc506p-12f,
    0x1.02de02p-11f,  0x1.3dd982p-11f,  0x1.78d500p-11f,  0x1.b3d07cp-11f,  0x1.eecbfep-11f,  0x1.4fdf3ap-10f,
    0x1.e353f8p-10f,  0x1.3b645ap-9f,   0x1.851eb8p-9f,   0x1.ced914p-9f,   0x1.0c49bap-8f,   0x1.3126e8p-8f,
    0x1.56041ap-8f,   0x1.7ae148p-8f,   0x1.9fbe76p-8f,   0x1.c49ba6p-8f,   0x1.e978d4p-8f,   0x1.072b02p-7f,
    0x1.19999ap-7f,   0x1.2c0830p-7f,   0x1.3e76c8p-7f,   0x1.75c290p-7f,   0x1.d1eb86p-7f,   0x1.170a3ep-6f,
    0x1.451ebap-6f,   0x1.733334p-6f,   0x1.a147aep-6f,   0x1.cf5c2ap-6f,   0x1.fd70a4p-6f,   0x1.15c290p-5f,
    0x1.2ccccep-5f,   0x1.43d70ap-5f,   0x1.5ae146p-5f,   0x1.71eb86p-5f,   0x1.88f5c2p-5f,   0x1.a00000p-5f,
    0x1.b70a3ep-5f,   0x1.ce147ap-5f,   0x1.e51ebap-5f,   0x1.fc28f6p-5f,   0x1.09999ap-4f,   0x1.151ebap-4f,
    0x1.20a3d6p-4f,   0x1.2c28f6p-4f,   0x1.37ae14p-4f,   0x1.433334p-4f,   0x1.4eb854p-4f,   0x1.5a3d70p-4f,
    0x1.65c290p-4f,   0x1.7147aep-4f,   0x1.7ccccep-4f,   0x1.8851eep-4f,   0x1.93d70ap-4f,   0x1.b66668p-4f,
    0x1.f00000p-4f,   0x1.14ccccp-3f,   0x1.31999ap-3f,   0x1.4e6666p-3f,   0x1.6b3334p-3f,   0x1.880000p-3f,
    0x1.a4ccccp-3f,   0x1.c1999ap-3f,   0x1.de6666p-3f,   0x1.fb3332p-3f,   0x1.0c0000p-2f,   0x1.1a6668p-2f,
    0x1.28ccccp-2f,   0x1.373334p-2f,   0x1.459998p-2f,   0x1.540000p-2f,   0x1.626666p-2f,   0x1.70ccccp-2f,
    0x1.7f3334p-2f,   0x1.8d9998p-2f,   0x1.9c0000p-2f,   0x1.aa6666p-2f,   0x1.b8ccccp-2f,   0x1.c73334p-2f,
    0x1.d59998p-2f,   0x1.e40000p-2f,   0x1.f26664p-2f,   0x1.006666p-1f,   0x1.079998p-1f,   0x1.0eccccp-1f,
    0x1.160000p-1f,   0x1.1d3334p-1f,   0x1.246668p-1f,   0x1.2b999ap-1f,   0x1.32ccccp-1f,   0x1.3a0000p-1f,
    0x1.413334p-1f,   0x1.486668p-1f,   0x1.4f999ap-1f,   0x1.56ccccp-1f,   0x1.5e0000p-1f,   0x1.653334p-1f,
    0x1.6c6668p-1f,   0x1.73999ap-1f,   0x1.7accccp-1f,   0x1.820000p-1f,   0x1.893334p-1f,   0x1.906666p-1f,
    0x1.97999ap-1f,   0x1.9eccccp-1f,   0x1.a60000p-1f,   0x1.ad3334p-1f,   0x1.b46666p-1f,   0x1.bb999ap-1f,
    0x1.c2ccccp-1f,   0x1.ca0000p-1f,   0x1.d13334p-1f,   0x1.d86666p-1f,   0x1.df999ap-1f,   0x1.e6ccccp-1f,
    0x1.ee0000p-1f,   0x1.f53334p-1f,   0x1.fc6666p-1f,   0x1.000000p+0f,
};

// bitsandbytes' bucketize rule: codes sorted by value (stable: equal codes keep index order, torch's
// argsort on 16 values), f32 midpoints between neighbours; a scaled value s gets the sorted position
// "number of midpoints < s" (torch.bucketize, right=False: exact midpoints go to the lower code), mapped back
// to the code index.
template <size_t N> struct Bucketizer {
    std::array<float, N - 1> bounds{};
    std::array<uint8_t, N> order{};

    explicit Bucketizer(const std::array<float, N>& code) {
        for (size_t i = 0; i < N; ++i) order[i] = uint8_t(i);
        std::stable_sort(order.begin(), order.end(), [&](uint8_t a, uint8_t b) { return code[a] < code[b]; });
        for (size_t i = 0; i + 1 < N; ++i) bounds[i] = (code[order[i]] + code[order[i + 1]]) / 2.0f;
    }
    uint8_t operator()(float s) const {
        size_t pos;
        if constexpr (N <= 16) {
            pos = 0;
            for (float b : bounds) pos += b < s ? 1 : 0;
        } else {
            pos = size_t(std::lower_bound(bounds.begin(), bounds.end(), s) - bounds.begin());
        }
        return order[pos];
    }
};

// bitsandbytes default backend quantize_4bit / quantize_blockwise on f32 input:
//   full blocks: absmax = max|x|; s = clamp(x * (1 / max(absmax, 1e-38)), -1, 1)
//   the partial last block: absmax = max(max|x|, 1e-38) (stored clamped); s = clamp(x / absmax, -1, 1)
template <size_t N>
void quantize_blocks(const float* x, int64_t n, int64_t block, const Bucketizer<N>& bucket, float* absmax, uint8_t* q) {
    const int64_t n_full = n / block;
    for (int64_t bi = 0; bi * block < n; ++bi) {
        const int64_t b0 = bi * block, m = std::min(block, n - b0);
        float amax = 0.0f;
        for (int64_t e = 0; e < m; ++e) amax = std::max(amax, std::fabs(x[b0 + e]));
        const float clamped = std::max(amax, 1e-38f);
        if (bi < n_full) {
            absmax[bi] = amax;
            const float inv = 1.0f / clamped;
            for (int64_t e = 0; e < m; ++e) q[b0 + e] = bucket(std::clamp(x[b0 + e] * inv, -1.0f, 1.0f));
        } else {
            absmax[bi] = clamped;
            for (int64_t e = 0; e < m; ++e) q[b0 + e] = bucket(std::clamp(x[b0 + e] / clamped, -1.0f, 1.0f));
        }
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
    return kDynamicMapSigned;
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
    LOWBIT_TRY(check_finite_weights(w, n, shape.n_dims == 2 ? shape[1] : 0, ""));
    Nf4Tensor t;
    t.params = params;
    t.shape = shape;
    t.code = code_table(params.quant_type);
    const int64_t n_blocks = t.n_blocks();
    std::vector<float> absmax(static_cast<size_t>(n_blocks));
    const Bucketizer<16> bucket(t.code);
    std::vector<uint8_t> q(static_cast<size_t>(n + 1));
    // Blocks are independent: split whole blocks over the pool (the result does not depend on the split).
    const int64_t bs = params.block_size;
    ThreadPool::global().parallel_for(
        n_blocks,
        [&](int64_t b0, int64_t b1, int) {
            quantize_blocks(w + b0 * bs, std::min(n, b1 * bs) - b0 * bs, bs, bucket, absmax.data() + b0,
                            q.data() + b0 * bs);
        },
        std::max<int64_t>(1, 65536 / bs));
    q[size_t(n)] = bucket(0.0f); // odd n: bitsandbytes pads the scaled tensor with 0.0 and quantizes it
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
    const Bucketizer<256> nested_bucket(t.nested_code);
    quantize_blocks(centered.data(), n_blocks, kNestedBlockSize, nested_bucket, t.nested_absmax.data(),
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
