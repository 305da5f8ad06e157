// SPDX-License-Identifier: MIT
// repack tests: for every HF 4-bit layout, a few shapes and group sizes, the packed rows dequantize (scheme row)
// to exactly the layout's reference dequantization (bit for bit: packed4.h states why), layouts the blocks cannot
// hold are refused with a reason (2/3-bit, HQQ axis 0 or f32 meta, NF4 block 32; GPTQ act-order is packed with its
// column order), and the CPU matmul on the packed weights (the active qdot level) matches ref::matmul on the
// dequantized weights: within the 8-bit activation rounding (4x its expected squared error, derived below as in
// qdot_test.cpp; NF4/FP4's int16 codes add ~1e-5 of absmax per weight, far below it).
#include "core/half.h"
#include "kernel/kernel.h"
#include "kernel/ref/ref_ops.h"
#include "model/quantized/repack.h"
#include "scheme/scheme_list.h"

#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::model::quantized {
namespace {

std::vector<float> dense_of(const PackedWeight& p) {
    TensorView v = TensorView::contiguous(const_cast<uint8_t*>(p.bytes.data()), p.dtype, Shape{p.n_rows, p.n_cols});
    return dense_weight(v);
}

// The CPU matmul on the packed weight vs ref::matmul on its dequantization (deq: the packed rows' own column order;
// with a col_perm the matmul gathers x into that order, so the reference multiplies the gathered x).
void expect_kernel_matches(const PackedWeight& p, const std::vector<float>& deq) {
    ThreadPool pool(2);
    auto w = kernel::make_weight(p.bytes.data(), p.dtype, p.n_rows, p.n_cols);
    if (!p.col_perm.empty()) w.col_perm = p.col_perm.data();
    const auto wf = kernel::make_weight(deq.data(), DType::kF32, p.n_rows, p.n_cols);
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int64_t m : {1, 3, 20}) {
        std::vector<float> x0(size_t(m * p.n_cols)), x(x0.size());
        for (auto& v : x0) v = nd(rng);
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < p.n_cols; ++j)
                x[size_t(i * p.n_cols + j)] = x0[size_t(i * p.n_cols + (w.col_perm ? w.col_perm[j] : j))];
        std::vector<float> want(size_t(m * p.n_rows)), got(want.size(), NAN);
        kernel::ref::matmul(x.data(), m, wf, nullptr, want.data(), nullptr);
        kernel::matmul(kernel::Exec{kernel::Backend::kCpu, &pool}, x0.data(), m, w, nullptr, got.data());
        double e = 0, n = 0;
        for (size_t i = 0; i < got.size(); ++i)
            e += (double(got[i]) - want[i]) * (got[i] - want[i]), n += double(want[i]) * want[i];
        EXPECT_GT(n, 0.0);
        // 8-bit activation blocks of 32 (scale d = amax / 127): rounding uniform in ±d/2, so the expected squared
        // error is Σ_rows Σ_k w² d² / 12 (qdot_test.cpp's derivation); allow 4x.
        double expected = 0;
        for (int64_t i = 0; i < m; ++i)
            for (int64_t b = 0; b < p.n_cols / 32; ++b) {
                float amax = 0;
                for (int64_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[size_t(i * p.n_cols + 32 * b + j)]));
                const double d = amax / 127.0;
                for (int64_t r = 0; r < p.n_rows; ++r)
                    for (int64_t j = 0; j < 32; ++j) {
                        const double wv = deq[size_t(r * p.n_cols + 32 * b + j)];
                        expected += wv * wv * d * d / 12.0;
                    }
            }
        EXPECT_LE(e, 4.0 * expected) << dtype_name(p.dtype) << " m=" << m;
    }
}

scheme::gptq::GptqLinear gptq_linear(int64_t n_out, int64_t n_in, int64_t g, bool act_order, uint32_t seed,
                                     int bits = 4) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
    std::uniform_real_distribution<float> sc(0.001f, 0.05f);
    scheme::gptq::GptqLinear l;
    l.bits = bits, l.n_out = n_out, l.n_in = n_in, l.n_groups = n_in / g;
    for (int64_t i = 0; i < n_out * n_in; ++i) l.codes.push_back(code(rng));
    for (int64_t i = 0; i < n_out * l.n_groups; ++i)
        l.scales.push_back(f16_to_f32(f32_to_f16(sc(rng)))), l.zeros.push_back(code(rng));
    for (int64_t k = 0; k < n_in; ++k) l.g_idx.push_back(int32_t(k / g));
    if (act_order) std::shuffle(l.g_idx.begin(), l.g_idx.end(), rng);
    return l;
}

TEST(Repack, GptqIsBitExact) {
    for (auto [n, k, g] : {std::tuple<int64_t, int64_t, int64_t>{8, 128, 128}, {24, 256, 32}, {16, 192, 64}}) {
        const auto l = gptq_linear(n, k, g, false, uint32_t(k + g));
        std::string why;
        const auto p = repack_gptq(l, &why);
        ASSERT_TRUE(p.has_value()) << why;
        EXPECT_EQ(p->dtype, DType::kI4Z);
        EXPECT_EQ(p->bytes.size(), size_t(n * k / 32 * 20));
        const auto deq = dense_of(*p);
        EXPECT_EQ(deq, scheme::gptq::dequantize(l)) << n << "x" << k << " g" << g;
        expect_kernel_matches(*p, deq);
    }
    std::string why;
    auto three = gptq_linear(8, 96, 32, false, 6);
    three.bits = 3;
    EXPECT_FALSE(repack_gptq(three, &why).has_value());
    EXPECT_NE(why.find("3-bit"), std::string::npos) << why;
    EXPECT_FALSE(repack_gptq(gptq_linear(8, 96, 48, false, 7), &why).has_value()); // g not a multiple of 32
}

// GPTQ act-order (g_idx shuffled, every group still K / G columns): packed with the columns sorted by group; stored
// column j is input column col_perm[j], and the packed rows read in that order are the dequantization exactly.
TEST(Repack, GptqActOrderKeepsItsColumnOrder) {
    for (auto [n, k, g] : {std::tuple<int64_t, int64_t, int64_t>{8, 128, 32}, {16, 256, 64}}) {
        const auto l = gptq_linear(n, k, g, true, uint32_t(k + 3 * g));
        std::string why;
        const auto p = repack_gptq(l, &why);
        ASSERT_TRUE(p.has_value()) << why;
        ASSERT_EQ(p->col_perm.size(), size_t(k));
        std::vector<int32_t> sorted = p->col_perm;
        std::sort(sorted.begin(), sorted.end());
        for (int64_t j = 0; j < k; ++j) ASSERT_EQ(sorted[size_t(j)], j) << "not a permutation";
        for (int64_t j = 0; j < k; ++j) // groups contiguous, columns ascending within a group (stable)
            EXPECT_EQ(l.g_idx[size_t(p->col_perm[size_t(j)])], j / g);
        const auto deq = dense_of(*p), want = scheme::gptq::dequantize(l);
        for (int64_t r = 0; r < n; ++r)
            for (int64_t j = 0; j < k; ++j)
                ASSERT_EQ(deq[size_t(r * k + j)], want[size_t(r * k + p->col_perm[size_t(j)])]) << r << "," << j;
        expect_kernel_matches(*p, deq);
    }
    // A group of other than K / G columns cannot be made contiguous groups of that size.
    auto uneven = gptq_linear(8, 128, 32, true, 9);
    *std::find(uneven.g_idx.begin(), uneven.g_idx.end(), 1) = 0; // group 0: 33 columns, group 1: 31
    std::string why;
    EXPECT_FALSE(repack_gptq(uneven, &why).has_value());
    EXPECT_NE(why.find("act-order g_idx with a group of other than 32 columns"), std::string::npos) << why;
}

TEST(Repack, AwqAndRtnAreBitExact) {
    std::mt19937 rng(9);
    std::uniform_int_distribution<int> code(0, 15);
    for (int64_t g : {int64_t(32), int64_t(128), int64_t(-1)}) {
        scheme::awq::AwqLinear l;
        l.n_out = 16, l.n_in = 256, l.group_size = g;
        const int64_t G = g > 0 ? 256 / g : 1;
        for (int64_t i = 0; i < 16 * 256; ++i) l.codes.push_back(uint8_t(code(rng)));
        for (int64_t i = 0; i < 16 * G; ++i)
            l.scales.push_back(f16_to_f32(f32_to_f16(0.01f + 0.001f * float(i % 7)))), l.zeros.push_back(code(rng));
        std::string why;
        const auto p = repack_awq(l, &why);
        ASSERT_TRUE(p.has_value()) << why;
        EXPECT_EQ(dense_of(*p), scheme::awq::dequantize(l)) << "awq g" << g;
        expect_kernel_matches(*p, dense_of(*p));
    }
    std::normal_distribution<float> nd(0.0f, 0.05f);
    std::vector<float> w(32 * 256);
    for (auto& v : w) v = nd(rng);
    for (auto [g, sym] : {std::pair<int64_t, bool>{32, false}, {64, true}, {-1, false}}) {
        const auto t = scheme::int_group::quantize_rtn(w.data(), 32, 256, {4, g, sym});
        ASSERT_TRUE(t.ok()) << t.error().message;
        std::string why;
        const auto p = repack_int_group(*t, &why);
        ASSERT_TRUE(p.has_value()) << why;
        std::vector<float> want(w.size());
        scheme::int_group::dequantize(*t, want.data());
        EXPECT_EQ(dense_of(*p), want) << "rtn g" << g << " sym " << sym;
        expect_kernel_matches(*p, want);
    }
    const auto t3 = scheme::int_group::quantize_rtn(w.data(), 32, 256, {3, 32, false});
    std::string why;
    EXPECT_FALSE(repack_int_group(*t3, &why).has_value());
}

// HQQ: float zeros (not integers) and f16 scales, as hqq stores them by default.
scheme::hqq::HqqTensor hqq_tensor(int64_t rows, int64_t cols, int64_t g, int axis, DType meta, uint32_t seed,
                                  int nbits = 4) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> code(0, (1 << nbits) - 1);
    std::uniform_real_distribution<float> sc(0.001f, 0.05f), zr(0.0f, float((1 << nbits) - 1));
    scheme::hqq::HqqParams p;
    p.nbits = nbits, p.group_size = g, p.axis = axis, p.meta_dtype = meta;
    const auto gs = scheme::hqq::grouped_shape(p, Shape{rows, cols});
    std::vector<uint8_t> q(size_t(rows * cols));
    for (auto& v : q) v = uint8_t(code(rng));
    const int64_t n_groups = scheme::hqq::n_groups(p, gs);
    std::vector<float> scale(static_cast<size_t>(n_groups)), zero(static_cast<size_t>(n_groups));
    for (auto& v : scale) v = sc(rng);
    for (auto& v : zero) v = zr(rng);
    auto t = scheme::hqq::make_tensor(p, Shape{rows, cols}, q, scale, zero);
    EXPECT_TRUE(t.ok()) << t.error().message;
    return *t;
}

TEST(Repack, HqqIsBitExactWithFloatZeros) {
    for (auto [rows, cols, g] : {std::tuple<int64_t, int64_t, int64_t>{8, 128, 64}, {12, 256, 128}, {4, 64, 32}}) {
        const auto t = hqq_tensor(rows, cols, g, 1, DType::kF16, uint32_t(cols + g));
        std::string why;
        const auto p = repack_hqq(t, &why);
        ASSERT_TRUE(p.has_value()) << why;
        std::vector<float> want(size_t(rows * cols));
        scheme::hqq::dequantize(t, want.data());
        EXPECT_EQ(dense_of(*p), want) << rows << "x" << cols << " g" << g;
        expect_kernel_matches(*p, want);
    }
    std::string why;
    EXPECT_FALSE(repack_hqq(hqq_tensor(8, 128, 64, 0, DType::kF16, 1), &why).has_value());
    EXPECT_NE(why.find("axis-0"), std::string::npos) << why;
    EXPECT_FALSE(repack_hqq(hqq_tensor(8, 128, 64, 1, DType::kF32, 2), &why).has_value()); // f32 meta: not f16
    EXPECT_NE(why.find("f16"), std::string::npos) << why;
}

TEST(Repack, Nf4AndFp4AreBitExact) {
    std::mt19937 rng(4);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    for (auto type : {scheme::nf4::QuantType::kNf4, scheme::nf4::QuantType::kFp4})
        for (int64_t block : {int64_t(64), int64_t(128), int64_t(256)})
            for (bool dq : {true, false}) {
                const int64_t rows = 12, cols = 256;
                std::vector<float> w(size_t(rows * cols));
                for (auto& v : w) v = nd(rng);
                scheme::nf4::Nf4Params prm;
                prm.quant_type = type, prm.block_size = block, prm.double_quant = dq;
                const auto t = scheme::nf4::quantize(w.data(), Shape{rows, cols}, prm);
                ASSERT_TRUE(t.ok()) << t.error().message;
                std::string why;
                const auto p = repack_nf4(*t, &why);
                ASSERT_TRUE(p.has_value()) << why;
                EXPECT_EQ(p->dtype, type == scheme::nf4::QuantType::kNf4 ? DType::kNF4x64 : DType::kFP4x64);
                std::vector<float> want(w.size());
                scheme::nf4::dequantize(*t, want.data());
                EXPECT_EQ(dense_of(*p), want) << scheme::nf4::quant_type_name(type) << " block " << block;
                expect_kernel_matches(*p, want);
            }
    std::vector<float> w(8 * 128, 0.01f);
    scheme::nf4::Nf4Params prm;
    prm.block_size = 32;
    const auto t = scheme::nf4::quantize(w.data(), Shape{8, 128}, prm);
    ASSERT_TRUE(t.ok());
    std::string why;
    EXPECT_FALSE(repack_nf4(*t, &why).has_value());
    auto other = scheme::nf4::quantize(w.data(), Shape{8, 128}, scheme::nf4::Nf4Params{});
    other->code[3] += 1e-3f; // a quant_map that is not bitsandbytes' table
    EXPECT_FALSE(repack_nf4(*other, &why).has_value());
    EXPECT_NE(why.find("quant_map"), std::string::npos) << why;
}

// 8-bit groups (GPTQ incl. act-order, lowbit RTN, HQQ with float zeros) repack into kI8Z, bit-exact, and the CPU
// matmul on them matches the reference within the activation rounding; 2-bit stays dense.
TEST(Repack, EightBitGroupsAreBitExact) {
    for (bool act_order : {false, true}) {
        const auto l = gptq_linear(16, 256, 64, act_order, 21, 8);
        std::string why;
        const auto p = repack_gptq(l, &why);
        ASSERT_TRUE(p.has_value()) << why;
        EXPECT_EQ(p->dtype, DType::kI8Z);
        EXPECT_EQ(p->bytes.size(), size_t(16 * 256 / 32 * 36));
        const auto deq = dense_of(*p), want = scheme::gptq::dequantize(l);
        for (int64_t r = 0; r < 16; ++r)
            for (int64_t j = 0; j < 256; ++j)
                ASSERT_EQ(deq[size_t(r * 256 + j)], want[size_t(r * 256 + (act_order ? p->col_perm[size_t(j)] : j))])
                    << "gptq 8-bit act_order " << act_order << " " << r << "," << j;
        expect_kernel_matches(*p, deq);
    }
    std::mt19937 rng(4);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    std::vector<float> w(32 * 256);
    for (auto& v : w) v = nd(rng);
    for (auto [g, sym] : {std::pair<int64_t, bool>{32, false}, {128, true}}) {
        const auto t = scheme::int_group::quantize_rtn(w.data(), 32, 256, {8, g, sym});
        ASSERT_TRUE(t.ok()) << t.error().message;
        std::string why;
        const auto p = repack_int_group(*t, &why);
        ASSERT_TRUE(p.has_value()) << why;
        EXPECT_EQ(p->dtype, DType::kI8Z);
        std::vector<float> want(w.size());
        scheme::int_group::dequantize(*t, want.data());
        EXPECT_EQ(dense_of(*p), want) << "rtn 8-bit g" << g << " sym " << sym;
        expect_kernel_matches(*p, want);
    }
    const auto h = hqq_tensor(8, 256, 64, 1, DType::kF16, 33, 8);
    std::string why;
    const auto p = repack_hqq(h, &why);
    ASSERT_TRUE(p.has_value()) << why;
    EXPECT_EQ(p->dtype, DType::kI8Z);
    std::vector<float> want(size_t(8 * 256));
    scheme::hqq::dequantize(h, want.data());
    EXPECT_EQ(dense_of(*p), want) << "hqq 8-bit";
    expect_kernel_matches(*p, want);
    EXPECT_FALSE(repack_gptq(gptq_linear(8, 128, 32, false, 5, 2), &why).has_value());
    EXPECT_NE(why.find("2-bit codes (only 4- and 8-bit groups are repacked)"), std::string::npos) << why;
}

} // namespace
} // namespace lowbit::model::quantized
