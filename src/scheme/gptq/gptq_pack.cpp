// SPDX-License-Identifier: MIT
// HF GPTQ packing (qweight / qzeros / scales / g_idx) and its inverse; layout in gptq_pack.h.
#include "scheme/gptq/gptq_pack.h"

#include "core/half.h"

#include <string>

namespace lowbit::scheme::gptq {
namespace {

// Writes value v (b bits) at bit position `bit` of the stream whose word i lives at words[i * stride + col].
void put_bits(uint32_t* words, int64_t stride, int64_t col, int64_t bit, uint32_t v, int b) {
    const int64_t w = bit / 32;
    const int off = int(bit % 32);
    words[w * stride + col] |= v << off;
    if (off + b > 32) words[(w + 1) * stride + col] |= v >> (32 - off);
}

uint32_t get_bits(const uint32_t* words, int64_t stride, int64_t col, int64_t bit, int b) {
    const int64_t w = bit / 32;
    const int off = int(bit % 32);
    uint64_t v = words[w * stride + col] >> off;
    if (off + b > 32) v |= uint64_t(words[(w + 1) * stride + col]) << (32 - off);
    return uint32_t(v) & ((1u << b) - 1u);
}

bool bits_ok(int b) {
    return b == 2 || b == 3 || b == 4 || b == 8;
}

} // namespace

const char* format_name(GptqFormat format) {
    return format == GptqFormat::kV2 ? "gptq_v2" : "gptq";
}

Result<GptqFormat> parse_format(std::string_view f) {
    if (f.empty() || f == "gptq") return GptqFormat::kV1;
    if (f == "gptq_v2") return GptqFormat::kV2;
    return make_error(ErrorCode::kUnsupported, "GPTQ checkpoint_format '" + std::string(f) +
                                                   "' is not supported (expected 'gptq' or 'gptq_v2'; Marlin and "
                                                   "other layouts are load-time repacks of 'gptq')");
}

std::vector<uint32_t> pack_bits(std::span<const uint32_t> values, int bits) {
    std::vector<uint32_t> words(size_t((int64_t(values.size()) * bits + 31) / 32), 0u);
    for (size_t i = 0; i < values.size(); ++i) put_bits(words.data(), 1, 0, int64_t(i) * bits, values[i], bits);
    return words;
}

std::vector<uint32_t> unpack_bits(std::span<const uint32_t> words, int bits, int64_t n_values) {
    std::vector<uint32_t> v(static_cast<size_t>(n_values));
    for (int64_t i = 0; i < n_values; ++i) v[size_t(i)] = get_bits(words.data(), 1, 0, i * bits, bits);
    return v;
}

Status validate(const GptqLinear& l) {
    if (!bits_ok(l.bits))
        return make_error(ErrorCode::kUsage, "GPTQ bits must be 2, 3, 4 or 8, got " + std::to_string(l.bits));
    if (l.n_out <= 0 || l.n_in <= 0 || l.n_groups <= 0 || l.n_groups > l.n_in)
        return make_error(ErrorCode::kUsage, "GPTQ linear has a bad shape: " + std::to_string(l.n_out) + " outputs, " +
                                                 std::to_string(l.n_in) + " inputs, " + std::to_string(l.n_groups) +
                                                 " groups");
    if ((l.n_in * l.bits) % 32 != 0 || (l.n_out * l.bits) % 32 != 0)
        return make_error(ErrorCode::kUsage,
                          "GPTQ packing needs in_features*bits and out_features*bits to be multiples of 32, got " +
                              std::to_string(l.n_in) + "x" + std::to_string(l.bits) + " and " +
                              std::to_string(l.n_out) + "x" + std::to_string(l.bits));
    const size_t nk = size_t(l.n_out * l.n_in), ng = size_t(l.n_out * l.n_groups);
    if (l.codes.size() != nk || l.scales.size() != ng || l.zeros.size() != ng || l.g_idx.size() != size_t(l.n_in))
        return make_error(ErrorCode::kUsage, "GPTQ linear: codes/scales/zeros/g_idx sizes do not match the shape");
    const int32_t maxq = (1 << l.bits) - 1;
    for (int32_t c : l.codes)
        if (c < 0 || c > maxq) return make_error(ErrorCode::kUsage, "GPTQ code " + std::to_string(c) + " out of range");
    for (int32_t z : l.zeros)
        if (z < 0 || z > maxq) return make_error(ErrorCode::kUsage, "GPTQ zero " + std::to_string(z) + " out of range");
    for (int32_t g : l.g_idx)
        if (g < 0 || g >= l.n_groups)
            return make_error(ErrorCode::kUsage, "GPTQ g_idx " + std::to_string(g) + " out of range");
    return {};
}

Result<std::vector<TensorRecord>> pack(const GptqLinear& l, GptqFormat format, int64_t* n_wrapped_zeros) {
    LOWBIT_TRY(validate(l));
    const int b = l.bits;
    const int64_t N = l.n_out, K = l.n_in, G = l.n_groups;
    const uint32_t mask = (1u << b) - 1u;
    // qweight [K*b/32, N]: column n's codes over k form one bit stream.
    std::vector<uint32_t> qweight(size_t(K * b / 32 * N), 0u);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) put_bits(qweight.data(), N, n, k * b, uint32_t(l.codes[size_t(n * K + k)]), b);
    // qzeros [G, N*b/32]: row g's zeros over n form one bit stream.
    const int64_t zw = N * b / 32;
    std::vector<uint32_t> qzeros(size_t(G * zw), 0u);
    int64_t wrapped = 0;
    for (int64_t g = 0; g < G; ++g)
        for (int64_t n = 0; n < N; ++n) {
            int32_t z = l.zeros[size_t(n * G + g)];
            if (format == GptqFormat::kV1) {
                wrapped += z == 0;
                z -= 1;
            }
            put_bits(qzeros.data() + g * zw, 1, 0, n * b, uint32_t(z) & mask, b);
        }
    if (n_wrapped_zeros) *n_wrapped_zeros = wrapped;
    std::vector<uint16_t> scales(size_t(G * N));
    for (int64_t g = 0; g < G; ++g)
        for (int64_t n = 0; n < N; ++n) scales[size_t(g * N + n)] = f32_to_f16(l.scales[size_t(n * G + g)]);
    std::vector<TensorRecord> out;
    out.push_back(TensorRecord::from_values("qweight", DType::kI32, Shape{K * b / 32, N}, qweight));
    out.push_back(TensorRecord::from_values("qzeros", DType::kI32, Shape{G, zw}, qzeros));
    out.push_back(TensorRecord::from_values("scales", DType::kF16, Shape{G, N}, scales));
    out.push_back(TensorRecord::from_values("g_idx", DType::kI32, Shape{K}, l.g_idx));
    return out;
}

Result<GptqLinear> unpack(std::span<const TensorRecord> records, GptqFormat format, int bits, int64_t n_out,
                          int64_t n_in) {
    if (!bits_ok(bits))
        return make_error(ErrorCode::kUsage, "GPTQ bits must be 2, 3, 4 or 8, got " + std::to_string(bits));
    if ((n_in * bits) % 32 != 0 || (n_out * bits) % 32 != 0)
        return make_error(ErrorCode::kBadInput, "GPTQ shape " + std::to_string(n_out) + "x" + std::to_string(n_in) +
                                                    " cannot be packed with " + std::to_string(bits) + " bits");
    const int b = bits;
    const int64_t N = n_out, K = n_in, zw = N * b / 32;
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* rs, require_record(records, "scales", DType::kF16, -1));
    if (rs->shape.n_dims != 2 || rs->shape[1] != N || rs->shape[0] < 1)
        return make_error(ErrorCode::kBadInput,
                          "GPTQ record 'scales' must have shape [n_groups, " + std::to_string(N) + "]");
    const int64_t G = rs->shape[0];
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* rq,
                            require_record(records, "qweight", DType::kI32, Shape{K * b / 32, N}));
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* rz, require_record(records, "qzeros", DType::kI32, Shape{G, zw}));
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* rg, require_record(records, "g_idx", DType::kI32, Shape{K}));
    GptqLinear l;
    l.bits = b, l.n_out = N, l.n_in = K, l.n_groups = G;
    const auto qweight = rq->values<uint32_t>();
    const auto qzeros = rz->values<uint32_t>();
    const auto scales = rs->values<uint16_t>();
    l.g_idx = rg->values<int32_t>();
    for (int32_t g : l.g_idx)
        if (g < 0 || g >= G)
            return make_error(ErrorCode::kBadInput, "GPTQ record 'g_idx' holds " + std::to_string(g) +
                                                        ", outside [0, " + std::to_string(G) + ")");
    l.codes.resize(size_t(N * K));
    for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) l.codes[size_t(n * K + k)] = int32_t(get_bits(qweight.data(), N, n, k * b, b));
    const uint32_t mask = (1u << b) - 1u;
    l.zeros.resize(size_t(N * G));
    l.scales.resize(size_t(N * G));
    for (int64_t g = 0; g < G; ++g)
        for (int64_t n = 0; n < N; ++n) {
            uint32_t z = get_bits(qzeros.data() + g * zw, 1, 0, n * b, b);
            if (format == GptqFormat::kV1) z = (z + 1) & mask;
            l.zeros[size_t(n * G + g)] = int32_t(z);
            l.scales[size_t(n * G + g)] = f16_to_f32(scales[size_t(g * N + n)]);
        }
    return l;
}

std::vector<float> dequantize(const GptqLinear& l) {
    std::vector<float> w(size_t(l.n_out * l.n_in));
    for (int64_t n = 0; n < l.n_out; ++n)
        for (int64_t k = 0; k < l.n_in; ++k) {
            const size_t gi = size_t(n * l.n_groups + l.g_idx[size_t(k)]);
            w[size_t(n * l.n_in + k)] = l.scales[gi] * float(l.codes[size_t(n * l.n_in + k)] - l.zeros[gi]);
        }
    return w;
}

} // namespace lowbit::scheme::gptq
