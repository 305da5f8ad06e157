// SPDX-License-Identifier: MIT
// AutoAWQ GEMM packing (qweight / qzeros / scales, interleaved nibbles) and its inverse; layout in awq_pack.h.
#include "scheme/awq/awq_pack.h"

#include "core/half.h"

#include <fmt/format.h>

namespace lowbit::scheme::awq {
namespace {

constexpr int kPackNum = 8; // 4-bit values per int32 word

// Groups along K: g, or K for group_size -1 (AutoAWQ's WQLinear_GEMM: "group_size if != -1 else in_features").
int64_t group_of(int64_t group_size, int64_t n_in) {
    return group_size == -1 ? n_in : group_size;
}

Status check_bits(int bits) {
    if (bits != 4)
        return make_error(
            ErrorCode::kUnsupported,
            fmt::format("AWQ GEMM layout packs 4-bit weights only (AutoAWQ WQLinear_GEMM), got {} bits", bits));
    return ok_status();
}

// The 8 values words[c] packs for row r of a [rows, n_cols] int32 matrix (values(col) -> code), c = word index.
template <class Get> uint32_t pack_columns(int64_t c, Get&& get) {
    uint32_t word = 0;
    for (int i = 0; i < kPackNum; ++i) word |= (uint32_t(get(c * kPackNum + kAwqOrder[size_t(i)])) & 0xFu) << (4 * i);
    return word;
}

// Value of output column n (within row `row` of a [rows, N/8] packed matrix).
uint32_t unpack_column(const uint32_t* row, int64_t n) {
    const int64_t c = n / kPackNum;
    const int nibble = kAwqReverseOrder[size_t(n % kPackNum)];
    return (row[c] >> (4 * nibble)) & 0xFu;
}

Result<const TensorRecord*> require_2d(std::span<const TensorRecord> records, const char* suffix, DType dtype,
                                       int64_t rows, int64_t cols, const char* what) {
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* r, require_record(records, suffix, dtype, -1));
    if (r->shape.n_dims != 2 || r->shape[0] != rows || r->shape[1] != cols)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("AWQ GEMM tensor '{}' should have shape [{}, {}] ({}) but has {}", suffix, rows,
                                      cols, what, r->shape.to_string()));
    return r;
}

} // namespace

uint32_t pack_word(std::span<const uint32_t, 8> values) {
    return pack_columns(0, [&](int64_t n) { return values[size_t(n)]; });
}

Status validate(const AwqLinear& l) {
    LOWBIT_TRY(check_bits(l.bits));
    if (l.n_out <= 0 || l.n_in <= 0 || l.n_out % kPackNum != 0)
        return make_error(ErrorCode::kUsage, fmt::format("AWQ GEMM linear needs out_features a positive multiple of "
                                                         "8 and in_features > 0, got {} x {}",
                                                         l.n_out, l.n_in));
    const int64_t g = group_of(l.group_size, l.n_in);
    if (g <= 0 || l.n_in % g != 0)
        return make_error(ErrorCode::kUsage,
                          fmt::format("AWQ group size {} must divide in_features {}", l.group_size, l.n_in));
    const size_t nk = size_t(l.n_out * l.n_in), ng = size_t(l.n_out * (l.n_in / g));
    if (l.codes.size() != nk || l.scales.size() != ng || l.zeros.size() != ng)
        return make_error(ErrorCode::kUsage,
                          fmt::format("AWQ linear {} x {} group {}: codes/scales/zeros have {}/{}/{} values, expected "
                                      "{}/{}/{}",
                                      l.n_out, l.n_in, g, l.codes.size(), l.scales.size(), l.zeros.size(), nk, ng, ng));
    const int32_t maxq = (1 << l.bits) - 1;
    for (int32_t c : l.codes)
        if (c < 0 || c > maxq) return make_error(ErrorCode::kUsage, fmt::format("AWQ code {} out of [0, {}]", c, maxq));
    for (int32_t z : l.zeros)
        if (z < 0 || z > maxq) return make_error(ErrorCode::kUsage, fmt::format("AWQ zero {} out of [0, {}]", z, maxq));
    return ok_status();
}

Result<std::vector<TensorRecord>> pack_gemm(const AwqLinear& l) {
    LOWBIT_TRY(validate(l));
    const int64_t N = l.n_out, K = l.n_in, W = N / kPackNum;
    const int64_t G = K / group_of(l.group_size, K);
    // qweight [K, N/8]: row k packs the codes of input channel k over the outputs.
    std::vector<uint32_t> qweight(size_t(K * W));
    for (int64_t k = 0; k < K; ++k)
        for (int64_t c = 0; c < W; ++c)
            qweight[size_t(k * W + c)] = pack_columns(c, [&](int64_t n) { return l.codes[size_t(n * K + k)]; });
    // qzeros [G, N/8] and scales [G, N]: transposed from [N, G].
    std::vector<uint32_t> qzeros(size_t(G * W));
    std::vector<uint16_t> scales(size_t(G * N));
    for (int64_t g = 0; g < G; ++g) {
        for (int64_t c = 0; c < W; ++c)
            qzeros[size_t(g * W + c)] = pack_columns(c, [&](int64_t n) { return l.zeros[size_t(n * G + g)]; });
        for (int64_t n = 0; n < N; ++n) scales[size_t(g * N + n)] = f32_to_f16(l.scales[size_t(n * G + g)]);
    }
    std::vector<TensorRecord> out;
    out.push_back(TensorRecord::from_values("qweight", DType::kI32, Shape{K, W}, qweight));
    out.push_back(TensorRecord::from_values("qzeros", DType::kI32, Shape{G, W}, qzeros));
    out.push_back(TensorRecord::from_values("scales", DType::kF16, Shape{G, N}, scales));
    return out;
}

Result<AwqLinear> unpack_gemm(std::span<const TensorRecord> records, int bits, int64_t group_size, int64_t n_out,
                              int64_t n_in) {
    LOWBIT_TRY(check_bits(bits));
    const int64_t g = group_of(group_size, n_in);
    if (n_out <= 0 || n_out % kPackNum != 0 || n_in <= 0 || g <= 0 || n_in % g != 0)
        return make_error(ErrorCode::kBadInput,
                          fmt::format("AWQ GEMM linear {} x {} cannot use group size {} (out_features must be a "
                                      "multiple of 8, the group size must divide in_features)",
                                      n_out, n_in, group_size));
    const int64_t N = n_out, K = n_in, W = N / kPackNum, G = K / g;
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* rq, require_2d(records, "qweight", DType::kI32, K, W, "[K, N/8]"));
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* rz, require_2d(records, "qzeros", DType::kI32, G, W, "[K/g, N/8]"));
    LOWBIT_ASSIGN_OR_RETURN(const TensorRecord* rs, require_2d(records, "scales", DType::kF16, G, N, "[K/g, N]"));
    AwqLinear l;
    l.bits = bits, l.n_out = N, l.n_in = K, l.group_size = group_size;
    const auto qweight = rq->values<uint32_t>();
    const auto qzeros = rz->values<uint32_t>();
    const auto scales = rs->values<uint16_t>();
    l.codes.resize(size_t(N * K));
    for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n) l.codes[size_t(n * K + k)] = uint8_t(unpack_column(&qweight[size_t(k * W)], n));
    l.zeros.resize(size_t(N * G));
    l.scales.resize(size_t(N * G));
    for (int64_t gi = 0; gi < G; ++gi)
        for (int64_t n = 0; n < N; ++n) {
            l.zeros[size_t(n * G + gi)] = int32_t(unpack_column(&qzeros[size_t(gi * W)], n));
            l.scales[size_t(n * G + gi)] = f16_to_f32(scales[size_t(gi * N + n)]);
        }
    return l;
}

std::vector<float> dequantize(const AwqLinear& l) {
    const int64_t g = group_of(l.group_size, l.n_in), G = l.n_in / g;
    std::vector<float> w(size_t(l.n_out * l.n_in));
    for (int64_t n = 0; n < l.n_out; ++n)
        for (int64_t k = 0; k < l.n_in; ++k) {
            const size_t gi = size_t(n * G + k / g);
            w[size_t(n * l.n_in + k)] = l.scales[gi] * float(l.codes[size_t(n * l.n_in + k)] - l.zeros[gi]);
        }
    return w;
}

} // namespace lowbit::scheme::awq
