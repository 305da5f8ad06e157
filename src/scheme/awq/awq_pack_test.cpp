// SPDX-License-Identifier: MIT
// AutoAWQ GEMM packing: hand-computed interleaved words (order_map [0, 2, 4, 6, 1, 3, 5, 7]), zeros stored as is,
// transposed scales, round trips, and the refusals (bits, shapes, record shapes).
#include "core/half.h"
#include "scheme/awq/awq_pack.h"

#include <gtest/gtest.h>
#include <random>

namespace lowbit::scheme::awq {
namespace {

AwqLinear make(int64_t n_out, int64_t n_in, int64_t group, uint32_t seed) {
    AwqLinear l;
    l.n_out = n_out, l.n_in = n_in, l.group_size = group;
    const int64_t n_groups = group == -1 ? 1 : n_in / group;
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> code(0, 15);
    std::uniform_real_distribution<float> sc(0.001f, 0.1f);
    for (int64_t i = 0; i < n_out * n_in; ++i) l.codes.push_back(code(rng));
    for (int64_t i = 0; i < n_out * n_groups; ++i) {
        l.scales.push_back(f16_to_f32(f32_to_f16(sc(rng))));
        l.zeros.push_back(code(rng));
    }
    return l;
}

TEST(AwqPack, PackWordInterleavesColumns) {
    // Nibble i holds column kAwqOrder[i]: columns 0..7 = 1..8 -> nibbles (low first) 1,3,5,7,2,4,6,8.
    const uint32_t v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    EXPECT_EQ(pack_word(std::span<const uint32_t, 8>(v)), 0x86427531u);
    const uint32_t one_col1[8] = {0, 1, 0, 0, 0, 0, 0, 0}; // column 1 -> nibble 4
    EXPECT_EQ(pack_word(std::span<const uint32_t, 8>(one_col1)), 0x00010000u);
    const uint32_t col7[8] = {0, 0, 0, 0, 0, 0, 0, 0xA}; // column 7 -> nibble 7
    EXPECT_EQ(pack_word(std::span<const uint32_t, 8>(col7)), 0xA0000000u);
    const uint32_t col6[8] = {0, 0, 0, 0, 0, 0, 0xF, 0}; // column 6 -> nibble 3
    EXPECT_EQ(pack_word(std::span<const uint32_t, 8>(col6)), 0x0000F000u);
}

TEST(AwqPack, TinyMatrixHandComputedRecords) {
    AwqLinear l;
    l.n_out = 8, l.n_in = 2, l.group_size = 2;
    for (int n = 0; n < 8; ++n)
        for (int k = 0; k < 2; ++k) l.codes.push_back(n + 8 * k); // codes[n, k]
    for (int n = 0; n < 8; ++n) {
        l.zeros.push_back(15 - n);
        l.scales.push_back(0.25f * float(n + 1));
    }
    auto r = pack_gemm(l);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->size(), 3u);
    const auto& qw = (*r)[0];
    const auto& qz = (*r)[1];
    const auto& sc = (*r)[2];
    EXPECT_EQ(qw.suffix, "qweight");
    EXPECT_EQ(qw.dtype, DType::kI32);
    EXPECT_EQ(qw.shape, (Shape{2, 1})); // [K, N/8]
    // k = 0: columns 0..7 -> nibbles 0,2,4,6,1,3,5,7; k = 1: 8..15 -> 8,10,12,14,9,11,13,15.
    EXPECT_EQ(qw.values<uint32_t>(), (std::vector<uint32_t>{0x75316420u, 0xFDB9ECA8u}));
    EXPECT_EQ(qz.suffix, "qzeros");
    EXPECT_EQ(qz.shape, (Shape{1, 1}));
    // zeros 15..8 stored as is (no -1): nibbles 15,13,11,9,14,12,10,8.
    EXPECT_EQ(qz.values<uint32_t>(), (std::vector<uint32_t>{0x8ACE9BDFu}));
    EXPECT_EQ(sc.suffix, "scales");
    EXPECT_EQ(sc.dtype, DType::kF16);
    EXPECT_EQ(sc.shape, (Shape{1, 8}));
    const auto s = sc.values<uint16_t>();
    for (int n = 0; n < 8; ++n) EXPECT_EQ(f16_to_f32(s[size_t(n)]), 0.25f * float(n + 1));
    // W[n, k] = s * (q - z).
    const auto w = dequantize(l);
    EXPECT_EQ(w[0], 0.25f * (0 - 15));
    EXPECT_EQ(w[size_t(7 * 2 + 1)], 2.0f * (15 - 8));
}

TEST(AwqPack, ScalesAndZerosAreTransposedPerGroup) {
    auto l = make(16, 64, 32, 7);
    auto r = pack_gemm(l);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ((*r)[0].shape, (Shape{64, 2}));
    EXPECT_EQ((*r)[1].shape, (Shape{2, 2}));
    EXPECT_EQ((*r)[2].shape, (Shape{2, 16}));
    const auto s = (*r)[2].values<uint16_t>();
    EXPECT_EQ(f16_to_f32(s[size_t(1 * 16 + 5)]), l.scales[size_t(5 * 2 + 1)]); // scales[g=1, n=5]
    const auto z = (*r)[1].values<uint32_t>();
    // zeros[g=1, n=9]: word 1 of row 1, column 9 % 8 = 1 -> nibble 4.
    EXPECT_EQ(int32_t((z[size_t(1 * 2 + 1)] >> 16) & 0xF), l.zeros[size_t(9 * 2 + 1)]);
}

TEST(AwqPack, RoundTripGroupedAndPerChannel) {
    for (int64_t group : {int64_t(32), int64_t(64), int64_t(-1)}) {
        auto l = make(24, 128, group, uint32_t(group + 100));
        auto r = pack_gemm(l);
        ASSERT_TRUE(r.ok()) << r.error().message;
        auto u = unpack_gemm(*r, 4, group, 24, 128);
        ASSERT_TRUE(u.ok()) << u.error().message;
        EXPECT_EQ(u->codes, l.codes) << group;
        EXPECT_EQ(u->zeros, l.zeros) << group;
        EXPECT_EQ(u->scales, l.scales) << group;
        EXPECT_EQ(dequantize(*u), dequantize(l)) << group;
    }
}

TEST(AwqPack, RefusesOtherBitsAsUnsupported) {
    auto l = make(8, 32, 32, 1);
    l.bits = 3;
    auto r = pack_gemm(l);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(r.error().message.find("3 bits"), std::string::npos) << r.error().message;
    l.bits = 4;
    auto packed = pack_gemm(l);
    ASSERT_TRUE(packed.ok());
    auto u = unpack_gemm(*packed, 8, 32, 8, 32);
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(u.error().message.find("8 bits"), std::string::npos) << u.error().message;
}

TEST(AwqPack, ValidateRefusesBadShapesAndValues) {
    auto l = make(8, 32, 32, 2);
    l.n_out = 12; // not a multiple of 8
    EXPECT_EQ(validate(l).error().code, ErrorCode::kUsage);
    l = make(8, 32, 32, 2);
    l.group_size = 24; // does not divide 32
    EXPECT_EQ(validate(l).error().code, ErrorCode::kUsage);
    l = make(8, 32, 32, 2);
    l.codes[3] = 16;
    EXPECT_NE(validate(l).error().message.find("16"), std::string::npos);
    l = make(8, 32, 32, 2);
    l.zeros.pop_back();
    EXPECT_EQ(validate(l).error().code, ErrorCode::kUsage);
    EXPECT_TRUE(validate(make(8, 32, 32, 2)).ok());
}

TEST(AwqPack, UnpackNamesTheBadRecord) {
    auto l = make(16, 64, 32, 3);
    auto packed = pack_gemm(l);
    ASSERT_TRUE(packed.ok());
    // Wrong group size in the config: scales rows disagree.
    auto g = unpack_gemm(*packed, 4, 16, 16, 64);
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.error().code, ErrorCode::kBadInput);
    EXPECT_NE(g.error().message.find("'qzeros'"), std::string::npos) << g.error().message;
    EXPECT_NE(g.error().message.find("[4, 2]"), std::string::npos) << g.error().message;
    // GEMV-shaped qweight [N, K/8] is not GEMM's [K, N/8].
    auto gemv = *packed;
    gemv[0].shape = Shape{16, 8};
    gemv[0].bytes.resize(16 * 8 * 4);
    auto v = unpack_gemm(gemv, 4, 32, 16, 64);
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.error().message.find("'qweight'"), std::string::npos) << v.error().message;
    EXPECT_NE(v.error().message.find("[64, 2]"), std::string::npos) << v.error().message;
    // Missing record, wrong dtype.
    auto missing = *packed;
    missing.erase(missing.begin() + 1);
    auto m = unpack_gemm(missing, 4, 32, 16, 64);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("qzeros"), std::string::npos) << m.error().message;
    auto f32 = *packed;
    f32[2].dtype = DType::kF32;
    f32[2].bytes.resize(f32[2].bytes.size() * 2);
    auto d = unpack_gemm(f32, 4, 32, 16, 64);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.error().code, ErrorCode::kBadInput);
    EXPECT_NE(d.error().message.find("scales"), std::string::npos) << d.error().message;
}

} // namespace
} // namespace lowbit::scheme::awq
