// SPDX-License-Identifier: MIT
// Repacks of HF 4- and 8-bit layouts into packed4 blocks (see repack.h).
#include "model/quantized/repack.h"

#include "core/half.h"
#include "core/log.h"
#include "scheme/packed4/packed4.h"
#include "scheme/scheme_list.h"

#include <algorithm>
#include <fmt/format.h>

namespace lowbit::model::quantized {
namespace {

std::optional<PackedWeight> refuse(std::string* why_not, std::string why) {
    *why_not = std::move(why);
    return std::nullopt;
}

// Shared int-group repack: 4-bit codes into kI4Z, 8-bit into kI8Z. codes(r, out[n_cols]) writes row r's codes;
// meta(r, scales[G], zeros[G]) its groups.
template <class CodesFn, class MetaFn>
std::optional<PackedWeight> pack_int_groups(int bits, int64_t n_rows, int64_t n_cols, int64_t group_elems,
                                            CodesFn codes, MetaFn meta, std::string* why_not) {
    if (bits != 4 && bits != 8)
        return refuse(why_not, fmt::format("{}-bit codes (only 4- and 8-bit groups are repacked)", bits));
    if (group_elems <= 0 || group_elems % 32 != 0 || n_cols % group_elems != 0)
        return refuse(
            why_not, fmt::format("group size {} with K = {} (needs a multiple of 32 dividing K)", group_elems, n_cols));
    const bool eight = bits == 8;
    PackedWeight p{eight ? DType::kI8Z : DType::kI4Z, n_rows, n_cols, {}, {}};
    const uint64_t row_bytes =
        uint64_t(n_cols / 32) * (eight ? sizeof(scheme::packed4::BlockI8Z) : sizeof(scheme::packed4::BlockI4Z));
    p.bytes.resize(row_bytes * uint64_t(n_rows));
    std::vector<uint8_t> q(static_cast<size_t>(n_cols));
    std::vector<float> scales(static_cast<size_t>(n_cols / group_elems)), zeros(scales.size());
    for (int64_t r = 0; r < n_rows; ++r) {
        codes(r, q.data());
        meta(r, scales.data(), zeros.data());
        uint8_t* dst = p.bytes.data() + uint64_t(r) * row_bytes;
        if (!(eight ? scheme::packed4::pack_row_i8z(q.data(), scales.data(), zeros.data(), group_elems, n_cols, dst)
                    : scheme::packed4::pack_row_i4z(q.data(), scales.data(), zeros.data(), group_elems, n_cols, dst)))
            return refuse(why_not, "a scale or zero that is not an f16 value");
    }
    return p;
}

} // namespace

std::optional<PackedWeight> repack_gptq(const scheme::gptq::GptqLinear& l, std::string* why_not) {
    const int64_t K = l.n_in, G = l.n_groups;
    if (G <= 0 || K % G != 0) return refuse(why_not, fmt::format("{} groups for K = {}", G, K));
    const int64_t g = K / G;
    bool contiguous = true;
    for (int64_t k = 0; k < K && contiguous; ++k) contiguous = l.g_idx[size_t(k)] == k / g;
    // Act-order: the columns sorted by group (stable counting sort), when every group holds exactly g of them.
    std::vector<int32_t> perm;
    if (!contiguous) {
        std::vector<int64_t> next(static_cast<size_t>(G), 0);
        for (int64_t k = 0; k < K; ++k) {
            const int32_t gi = l.g_idx[size_t(k)];
            if (gi < 0 || gi >= G || next[size_t(gi)] == g)
                return refuse(why_not, fmt::format("act-order g_idx with a group of other than {} columns", g));
            ++next[size_t(gi)];
        }
        perm.resize(static_cast<size_t>(K));
        for (int64_t i = 0; i < G; ++i) next[size_t(i)] = i * g;
        for (int64_t k = 0; k < K; ++k) perm[size_t(next[size_t(l.g_idx[size_t(k)])]++)] = int32_t(k);
    }
    auto packed = pack_int_groups(
        l.bits, l.n_out, K, g,
        [&](int64_t r, uint8_t* q) {
            const int32_t* c = l.codes.data() + r * K;
            if (perm.empty()) {
                for (int64_t k = 0; k < K; ++k) q[k] = uint8_t(c[k]);
            } else {
                for (int64_t k = 0; k < K; ++k) q[k] = uint8_t(c[perm[size_t(k)]]);
            }
        },
        [&](int64_t r, float* s, float* z) {
            for (int64_t i = 0; i < G; ++i)
                s[i] = l.scales[size_t(r * G + i)], z[i] = float(l.zeros[size_t(r * G + i)]);
        },
        why_not);
    if (packed) packed->col_perm = std::move(perm);
    return packed;
}

std::optional<PackedWeight> repack_awq(const scheme::awq::AwqLinear& l, std::string* why_not) {
    const int64_t K = l.n_in, g = l.group_size > 0 ? l.group_size : K, G = g > 0 && K % g == 0 ? K / g : 0;
    return pack_int_groups(
        l.bits, l.n_out, K, g,
        [&](int64_t r, uint8_t* q) {
            for (int64_t k = 0; k < K; ++k) q[k] = l.codes[size_t(r * K + k)];
        },
        [&](int64_t r, float* s, float* z) {
            for (int64_t i = 0; i < G; ++i)
                s[i] = l.scales[size_t(r * G + i)], z[i] = float(l.zeros[size_t(r * G + i)]);
        },
        why_not);
}

std::optional<PackedWeight> repack_hqq(const scheme::hqq::HqqTensor& t, std::string* why_not) {
    if (t.shape.n_dims != 2) return refuse(why_not, "a weight that is not 2-D");
    if (t.params.axis != 1) return refuse(why_not, "axis-0 groups (strided, not along rows)");
    if (t.params.nbits != 4 && t.params.nbits != 8)
        return refuse(why_not, fmt::format("{}-bit codes (only 4- and 8-bit groups are repacked)", t.params.nbits));
    const int64_t n_rows = t.shape.dims[0], K = t.shape.dims[1], g = t.params.group_size;
    if (g <= 0 || K % g != 0) return refuse(why_not, fmt::format("group size {} not dividing K = {}", g, K));
    const scheme::hqq::GroupedShape gs = scheme::hqq::grouped_shape(t.params, t.shape);
    const std::vector<uint8_t> codes =
        scheme::hqq::unpack(t.w_q, t.params.nbits, gs.n_rows, gs.n_cols); // row-major weight order
    const int64_t G = K / g;
    return pack_int_groups(
        t.params.nbits, n_rows, K, g, [&](int64_t r, uint8_t* q) { std::copy_n(codes.data() + r * K, K, q); },
        [&](int64_t r, float* s, float* z) {
            std::copy_n(t.scale.data() + r * G, G, s);
            std::copy_n(t.zero.data() + r * G, G, z);
        },
        why_not);
}

std::optional<PackedWeight> repack_int_group(const scheme::int_group::IntGroupTensor& t, std::string* why_not) {
    const int64_t K = t.n_cols, G = t.n_groups(), words = t.words_per_row();
    const float implicit_zero = float(1 << (t.params.bits - 1));
    return pack_int_groups(
        t.params.bits, t.n_rows, K, t.group_elems(),
        [&](int64_t r, uint8_t* q) {
            for (int64_t k = 0; k < K; ++k)
                q[k] = uint8_t(scheme::int_group::get_code(&t.qweight[size_t(r * words)], k, t.params.bits));
        },
        [&](int64_t r, float* s, float* z) {
            for (int64_t i = 0; i < G; ++i) {
                s[i] = f16_to_f32(t.scales[size_t(r * G + i)]);
                z[i] = t.params.symmetric ? implicit_zero : float(t.zeros[size_t(r * G + i)]);
            }
        },
        why_not);
}

std::optional<PackedWeight> repack_nf4(const scheme::nf4::Nf4Tensor& t, std::string* why_not) {
    if (t.shape.n_dims != 2) return refuse(why_not, "a weight that is not 2-D");
    const int64_t n_rows = t.shape.dims[0], K = t.shape.dims[1], B = t.params.block_size;
    if (K % 64 != 0 || B % 64 != 0)
        return refuse(why_not, fmt::format("K = {} and block size {} (both need to be multiples of 64)", K, B));
    if (t.code != scheme::nf4::code_table(t.params.quant_type))
        return refuse(why_not, "a quant_map that differs from bitsandbytes' table");
    const bool nf4 = t.params.quant_type == scheme::nf4::QuantType::kNf4;
    PackedWeight p{nf4 ? DType::kNF4x64 : DType::kFP4x64, n_rows, K, {}, {}};
    const uint64_t row_bytes = uint64_t(K / 64) * sizeof(scheme::packed4::BlockF4x64);
    p.bytes.resize(row_bytes * uint64_t(n_rows));
    const std::vector<float> absmax = scheme::nf4::block_absmax(t);
    std::vector<uint8_t> q(static_cast<size_t>(K));
    std::vector<float> amax(static_cast<size_t>(K / 64));
    for (int64_t r = 0; r < n_rows; ++r) {
        for (int64_t k = 0; k < K; ++k) {
            const int64_t e = r * K + k; // packed: first element of a pair in the high nibble
            const uint8_t byte = t.packed[size_t(e / 2)];
            q[size_t(k)] = e % 2 == 0 ? uint8_t(byte >> 4) : uint8_t(byte & 0xF);
        }
        for (int64_t i = 0; i < K / 64; ++i) amax[size_t(i)] = absmax[size_t((r * K + 64 * i) / B)];
        scheme::packed4::pack_row_f4x64(q.data(), amax.data(), K, p.bytes.data() + uint64_t(r) * row_bytes);
    }
    return p;
}

std::vector<float> dense_weight(const TensorView& v) {
    const auto* sch = scheme::find_scheme(v.dtype);
    if (!sch || !sch->dequantize_row || v.shape.n_dims != 2) return {};
    const int64_t n_rows = v.shape.dims[0], n_cols = v.shape.dims[1];
    const auto row_bytes = dtype_row_bytes(v.dtype, uint64_t(n_cols));
    if (!row_bytes) return {};
    std::vector<float> out(size_t(n_rows * n_cols));
    for (int64_t r = 0; r < n_rows; ++r)
        sch->dequantize_row(static_cast<const uint8_t*>(v.data) + uint64_t(r) * *row_bytes, out.data() + r * n_cols,
                            n_cols);
    return out;
}

void RepackTally::dense(const std::string& module, const std::string& why) {
    if (n_dense++ == 0) first_reason = fmt::format("{}: {}", module, why);
}

void RepackTally::log(const char* method) const {
    if (n_dense == 0) {
        log_info("{}: {} quantized linears kept packed (4- or 8-bit blocks, kernels on the packed form)", method,
                 n_packed);
        return;
    }
    log_info("{}: {} quantized linears kept packed, {} dequantized to dense f32 (first: {})", method, n_packed, n_dense,
             first_reason);
}

} // namespace lowbit::model::quantized
