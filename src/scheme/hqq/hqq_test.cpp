// SPDX-License-Identifier: MIT
// HQQ storage: bit-exact pack/unpack for every nbits, hand-packed examples, records round trip, bad input.
#include "scheme/hqq/hqq.h"

#include <gtest/gtest.h>
#include <random>

namespace lowbit::scheme::hqq {
namespace {

std::vector<uint8_t> random_codes(int64_t n, int nbits, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> q(static_cast<size_t>(n));
    for (auto& v : q) v = uint8_t(rng() & ((1u << nbits) - 1u));
    return q;
}

TEST(HqqPack, RoundTripEveryNbits) {
    for (int nbits : {1, 2, 3, 4, 8}) {
        for (int64_t rows : {8, 16, 40, 80}) { // 3-bit: 8, 16 pad to 10/20 rows
            const int64_t cols = 7;
            const auto q = random_codes(rows * cols, nbits, uint32_t(nbits * 100 + rows));
            const auto packed = pack(q, nbits, rows, cols);
            EXPECT_EQ(int64_t(packed.size()), packed_shape(nbits, rows, cols).n_elems() * (nbits == 3 ? 4 : 1));
            EXPECT_EQ(unpack(packed, nbits, rows, cols), q) << nbits << " bits, " << rows << " rows";
        }
    }
}

TEST(HqqPack, HandPackedRowHalvesAndQuarters) {
    // 4-bit, R = 4 rows, C = 1: packed[i] = q[i] << 4 | q[i + 2]
    const std::vector<uint8_t> q4 = {1, 2, 3, 15};
    EXPECT_EQ(pack(q4, 4, 4, 1), (std::vector<uint8_t>{0x13, 0x2f}));
    // 2-bit, R = 4: one byte q0<<6 | q1<<4 | q2<<2 | q3
    const std::vector<uint8_t> q2 = {3, 0, 1, 2};
    EXPECT_EQ(pack(q2, 2, 4, 1), (std::vector<uint8_t>{0xc6}));
    // 1-bit, R = 8
    const std::vector<uint8_t> q1 = {1, 0, 0, 0, 0, 0, 0, 1};
    EXPECT_EQ(pack(q1, 1, 8, 1), (std::vector<uint8_t>{0x81}));
    // 3-bit, R = 3 padded to 10 rows: word = q0<<27 | q1<<24 | q2<<21
    const std::vector<uint8_t> q3 = {7, 1, 5};
    const auto p3 = pack(q3, 3, 3, 1);
    ASSERT_EQ(p3.size(), 4u);
    uint32_t w;
    std::memcpy(&w, p3.data(), 4);
    EXPECT_EQ(w, (7u << 27) | (1u << 24) | (5u << 21));
}

TEST(HqqTensor, GroupingDequantAndRecords) {
    // W [2, 4], group 2, axis 1: groups are (w0 w1), (w2 w3), ... ; axis 0: grouped [2, 4], groups are columns.
    const Shape shape{2, 4};
    const std::vector<uint8_t> q = {0, 1, 2, 3, 3, 2, 1, 0};
    HqqParams p;
    p.nbits = 2;
    p.group_size = 2;
    p.meta_dtype = DType::kF32;
    p.axis = 0; // grouped matrix [2, 4]: R = 2 rows -> 2-bit needs R % 4 == 0
    EXPECT_FALSE(validate(p, shape).ok());
    p.nbits = 8;
    auto t0 = make_tensor(p, shape, q, {1.0f, 2.0f, 3.0f, 4.0f}, {0.0f, 1.0f, 0.5f, 0.0f});
    ASSERT_TRUE(t0.ok()) << t0.error().message;
    std::vector<float> out(8);
    dequantize(*t0, out.data());
    // element (r, c) of [2, 4] uses group c
    EXPECT_EQ(out, (std::vector<float>{0.0f, 0.0f, 4.5f, 12.0f, 3.0f, 2.0f, 1.5f, 0.0f}));
    p.axis = 1; // grouped matrix [4, 2], groups are rows
    auto t1 = make_tensor(p, shape, q, {1.0f, 2.0f, 3.0f, 4.0f}, {0.0f, 1.0f, 0.5f, 0.0f});
    ASSERT_TRUE(t1.ok());
    dequantize(*t1, out.data());
    EXPECT_EQ(out, (std::vector<float>{0.0f, 1.0f, 2.0f, 4.0f, 7.5f, 4.5f, 4.0f, 0.0f}));
    const auto recs = to_records(*t1, true, false);
    auto back = from_records(recs);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->w_q, t1->w_q);
    EXPECT_EQ(back->scale, t1->scale);
    EXPECT_EQ(back->zero, t1->zero);
    EXPECT_EQ(back->shape, shape);
    const TensorRecord* packing = find_record(recs, "packing");
    ASSERT_NE(packing, nullptr);
    EXPECT_EQ(std::string(packing->bytes.begin(), packing->bytes.end()), "8bit_u8");
    EXPECT_EQ(find_record(recs, "scale")->shape, (Shape{4, 1}));
    EXPECT_EQ(find_record(recs, "shape")->dtype, DType::kI64);
}

TEST(HqqTensor, F16MetaRoundTripsExactly) {
    const Shape shape{16, 64};
    HqqParams p; // 4 bit, group 64, axis 1, f16 meta
    const auto q = random_codes(16 * 64, 4, 5);
    std::vector<float> s(16), z(16);
    for (int i = 0; i < 16; ++i) {
        s[size_t(i)] = 0.001f * float(i + 1) / 3.0f;
        z[size_t(i)] = 7.3f + 0.01f * float(i);
    }
    auto t = make_tensor(p, shape, q, s, z);
    ASSERT_TRUE(t.ok());
    auto back = from_records(to_records(*t, true, true));
    ASSERT_TRUE(back.ok());
    std::vector<float> a(16 * 64), b(16 * 64);
    dequantize(*t, a.data());
    dequantize(*back, b.data());
    EXPECT_EQ(a, b);
}

TEST(HqqTensor, BadParamsAndRecords) {
    HqqParams p;
    p.nbits = 5;
    EXPECT_EQ(validate(p, Shape{4, 64}).error().code, ErrorCode::kUsage);
    p.nbits = 4;
    p.group_size = 48;
    auto e = validate(p, Shape{4, 64});
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message.find("must divide"), std::string::npos);
    p.group_size = 64;
    p.axis = 2;
    EXPECT_FALSE(validate(p, Shape{4, 64}).ok());
    p.axis = 1;
    EXPECT_FALSE(validate(p, Shape{3, 64}).ok()); // 3 grouped rows cannot split into halves
    auto t =
        make_tensor(p, Shape{4, 64}, random_codes(256, 4, 1), std::vector<float>(4, 1.0f), std::vector<float>(4, 0.0f));
    ASSERT_TRUE(t.ok());
    auto recs = to_records(*t, true, true);
    auto wrong = recs;
    wrong[0].bytes.resize(10);
    wrong[0].shape = Shape{10};
    auto r = from_records(wrong);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("W_q"), std::string::npos);
    auto bad_pack = recs;
    for (auto& rec : bad_pack)
        if (rec.suffix == "packing") rec.bytes = {'2', 'b'};
    EXPECT_FALSE(from_records(bad_pack).ok());
    EXPECT_FALSE(from_records({}).ok());
}

} // namespace
} // namespace lowbit::scheme::hqq
