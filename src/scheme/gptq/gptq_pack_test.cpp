// SPDX-License-Identifier: MIT
// HF GPTQ packing: hand-computed words (4-bit nibbles, the 3-bit straddling stream of ANCHORS §3.1, v1's
// zero - 1), v1/v2 relation, act-order g_idx and random round trips for every bit width.
#include "core/half.h"
#include "scheme/gptq/gptq_pack.h"

#include <gtest/gtest.h>
#include <random>

namespace lowbit::scheme::gptq {
namespace {

GptqLinear make(int bits, int64_t n_out, int64_t n_in, int64_t group, uint32_t seed) {
    GptqLinear l;
    l.bits = bits, l.n_out = n_out, l.n_in = n_in, l.n_groups = (n_in + group - 1) / group;
    std::mt19937 rng(seed);
    const int maxq = (1 << bits) - 1;
    std::uniform_int_distribution<int> code(0, maxq);
    std::uniform_real_distribution<float> sc(0.001f, 0.1f);
    for (int64_t i = 0; i < n_out * n_in; ++i) l.codes.push_back(code(rng));
    for (int64_t i = 0; i < n_out * l.n_groups; ++i) {
        l.scales.push_back(f16_to_f32(f32_to_f16(sc(rng))));
        l.zeros.push_back(code(rng));
    }
    for (int64_t k = 0; k < n_in; ++k) l.g_idx.push_back(int32_t(k / group));
    return l;
}

std::vector<uint32_t> words(const TensorRecord& r) {
    return r.values<uint32_t>();
}

TEST(GptqPack, FourBitHandComputedWords) {
    GptqLinear l;
    l.bits = 4, l.n_out = 8, l.n_in = 8, l.n_groups = 1;
    for (int64_t n = 0; n < 8; ++n)
        for (int64_t k = 0; k < 8; ++k) l.codes.push_back(int32_t((n + k) % 16));
    l.scales.assign(8, 0.5f);
    l.zeros.assign(8, 8);
    l.g_idx.assign(8, 0);
    auto v1 = pack(l, GptqFormat::kV1);
    ASSERT_TRUE(v1.ok()) << v1.error().message;
    const auto& r = *v1;
    ASSERT_EQ(r[0].suffix, "qweight");
    EXPECT_EQ(r[0].shape, (Shape{1, 8}));
    const auto qw = words(r[0]);
    EXPECT_EQ(qw[0], 0x76543210u); // column 0: k = 0..7 in nibbles 0..7
    EXPECT_EQ(qw[1], 0x87654321u);
    EXPECT_EQ(qw[7], 0xEDCBA987u);
    EXPECT_EQ(r[1].shape, (Shape{1, 1}));
    EXPECT_EQ(words(r[1])[0], 0x77777777u); // v1: zero 8 stored as 7
    EXPECT_EQ(r[2].dtype, DType::kF16);
    EXPECT_EQ(r[2].values<uint16_t>()[3], 0x3800u); // 0.5 in f16
    auto v2 = pack(l, GptqFormat::kV2);
    ASSERT_TRUE(v2.ok());
    EXPECT_EQ(words((*v2)[1])[0], 0x88888888u);
    EXPECT_EQ(words((*v2)[0]), qw);
}

TEST(GptqPack, ThreeBitStreamStraddlesWords) {
    // 32 rows per 3 words (ANCHORS §3.1); expected words computed with Python integers:
    // sum(v_i << 3i) split into 32-bit words.
    for (int pattern = 0; pattern < 2; ++pattern) {
        GptqLinear l;
        l.bits = 3, l.n_out = 32, l.n_in = 32, l.n_groups = 1;
        for (int64_t n = 0; n < 32; ++n)
            for (int64_t k = 0; k < 32; ++k)
                l.codes.push_back(pattern == 0 ? int32_t(k % 8) : int32_t((7 * k + 3) % 8));
        l.scales.assign(32, 1.0f);
        l.zeros.assign(32, 4);
        l.g_idx.assign(32, 0);
        auto r = pack(l, GptqFormat::kV1);
        ASSERT_TRUE(r.ok()) << r.error().message;
        const auto qw = words((*r)[0]);
        ASSERT_EQ((*r)[0].shape, (Shape{3, 32}));
        const uint32_t want0[3] = {0x88fac688u, 0xc688fac6u, 0xfac688fau};
        const uint32_t want1[3] = {0x53977053u, 0x70539770u, 0x97705397u};
        for (int w = 0; w < 3; ++w) EXPECT_EQ(qw[size_t(w * 32 + 5)], pattern == 0 ? want0[w] : want1[w]) << w;
        // qzeros: 32 zeros of 3 stored as v1 value 3 -> stream of 3s: sum(3 << 3i).
        const auto qz = words((*r)[1]);
        EXPECT_EQ(qz[0], 0xDB6DB6DBu);
    }
}

TEST(GptqPack, V1WrapsZeroZeroAndCountsIt) {
    GptqLinear l = make(2, 16, 32, 32, 7);
    std::fill(l.zeros.begin(), l.zeros.end(), 2);
    l.zeros[3] = 0;
    int64_t wrapped = -1;
    auto r = pack(l, GptqFormat::kV1, &wrapped);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(wrapped, 1);
    // 2-bit: zero 2 stored as 1 everywhere but output 3 (0 - 1 masked = 3).
    EXPECT_EQ(words((*r)[1])[0], 0x555555D5u);
}

TEST(GptqPack, RoundTripEveryBitWidthAndActOrder) {
    for (int bits : {2, 3, 4, 8})
        for (int64_t group : {32, 64, 96}) {
            GptqLinear l = make(bits, 64, 192, group, uint32_t(bits * 100 + group));
            // act-order style g_idx: a permutation's positions / group.
            std::vector<int32_t> perm(192);
            for (int32_t k = 0; k < 192; ++k) perm[size_t(k)] = (k * 67) % 192;
            for (int32_t pos = 0; pos < 192; ++pos) l.g_idx[size_t(perm[size_t(pos)])] = int32_t(pos / group);
            for (GptqFormat f : {GptqFormat::kV1, GptqFormat::kV2}) {
                if (f == GptqFormat::kV1)
                    for (auto& z : l.zeros) z = std::max(z, 1);
                auto r = pack(l, f);
                ASSERT_TRUE(r.ok()) << r.error().message;
                auto u = unpack(*r, f, bits, 64, 192);
                ASSERT_TRUE(u.ok()) << u.error().message;
                EXPECT_EQ(u->codes, l.codes) << bits;
                EXPECT_EQ(u->zeros, l.zeros) << bits;
                EXPECT_EQ(u->scales, l.scales) << bits;
                EXPECT_EQ(u->g_idx, l.g_idx) << bits;
                EXPECT_EQ(dequantize(*u), dequantize(l));
            }
        }
}

TEST(GptqPack, V1V2DifferByOnePerZero) {
    GptqLinear l = make(4, 16, 64, 32, 3);
    for (auto& z : l.zeros) z = std::max(z, 1);
    auto a = pack(l, GptqFormat::kV1), b = pack(l, GptqFormat::kV2);
    ASSERT_TRUE(a.ok() && b.ok());
    const auto za = words((*a)[1]), zb = words((*b)[1]);
    for (size_t i = 0; i < za.size(); ++i) EXPECT_EQ(zb[i], za[i] + 0x11111111u); // GPTQModel's v1 -> v2
}

TEST(GptqPack, FormatNamesAndErrors) {
    EXPECT_EQ(*parse_format(""), GptqFormat::kV1);
    EXPECT_EQ(*parse_format("gptq"), GptqFormat::kV1);
    EXPECT_EQ(*parse_format("gptq_v2"), GptqFormat::kV2);
    auto m = parse_format("marlin");
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.error().code, ErrorCode::kUnsupported);
    EXPECT_STREQ(format_name(GptqFormat::kV2), "gptq_v2");
    GptqLinear l = make(4, 12, 64, 32, 1); // 12 * 4 bits is not a multiple of 32
    auto r = pack(l, GptqFormat::kV1);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("multiples of 32"), std::string::npos);
    GptqLinear ok = make(4, 16, 64, 32, 1);
    auto packed = pack(ok, GptqFormat::kV1);
    ASSERT_TRUE(packed.ok());
    auto bad = unpack(*packed, GptqFormat::kV1, 4, 16, 128); // wrong in_features
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, ErrorCode::kBadInput);
    EXPECT_NE(bad.error().message.find("qweight"), std::string::npos);
}

TEST(GptqPack, BitStreamHelpers) {
    const std::vector<uint32_t> v = {1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3};
    const auto w = pack_bits(v, 3);
    EXPECT_EQ(w.size(), 2u);
    EXPECT_EQ(unpack_bits(w, 3, int64_t(v.size())), v);
}

} // namespace
} // namespace lowbit::scheme::gptq
