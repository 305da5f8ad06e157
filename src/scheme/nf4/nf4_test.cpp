// SPDX-License-Identifier: MIT
// NF4/FP4: code tables, hand-computed blocks, packing order, double quant, records round trip, bad input.
#include "scheme/nf4/nf4.h"

#include <cmath>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::scheme::nf4 {
namespace {

std::vector<float> gaussian(int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng);
    return v;
}

double rel_rmse(const std::vector<float>& a, const std::vector<float>& b) {
    double se = 0, s2 = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        se += double(a[i] - b[i]) * double(a[i] - b[i]);
        s2 += double(a[i]) * double(a[i]);
    }
    return std::sqrt(se / s2);
}

TEST(Nf4, CodeTables) {
    const auto& nf4 = code_table(QuantType::kNf4);
    EXPECT_EQ(nf4[0], -1.0f);
    EXPECT_EQ(nf4[7], 0.0f);
    EXPECT_EQ(nf4[15], 1.0f);
    EXPECT_EQ(nf4[8], 0.07958029955625534f);
    for (int i = 1; i < 16; ++i) EXPECT_LT(nf4[size_t(i - 1)], nf4[size_t(i)]);
    const auto& fp4 = code_table(QuantType::kFp4);
    EXPECT_EQ(fp4[3], 1.0f);         // 12/12
    EXPECT_EQ(fp4[1], 0.0625f / 12); // smallest subnormal
    EXPECT_EQ(fp4[11], -1.0f);
    EXPECT_EQ(fp4[8], 0.0f);
    EXPECT_FALSE(std::signbit(fp4[8])); // bitsandbytes' "-0" is the Python int -0, i.e. +0.0
}

TEST(Nf4, DynamicMapShape) {
    const auto& m = dynamic_map_signed();
    EXPECT_EQ(m[255], 1.0f);
    EXPECT_FLOAT_EQ(m[0], -0.99296875f); // -(mean of the last two of linspace(0.1, 1, 65))
    int zeros = 0;
    for (int i = 1; i < 256; ++i) EXPECT_LE(m[size_t(i - 1)], m[size_t(i)]);
    for (float v : m) zeros += v == 0.0f;
    EXPECT_EQ(zeros, 1);
    EXPECT_FLOAT_EQ(m[128], 1e-6f * 0.55f); // smallest positive: 1e-6 * (0.1 + 1) / 2
}

TEST(Nf4, HandComputedBlockAndNibbleOrder) {
    // One block of 32 with absmax 2: x/absmax hits exact codes and midpoints.
    std::vector<float> w(32, 0.0f);
    w[0] = 2.0f;                     // 1.0 -> 15
    w[1] = -2.0f;                    // -1.0 -> 0
    w[2] = 0.16093020141124725f * 2; // code 9 exactly
    w[3] = 0.01f;                    // near 0 -> 7
    w[4] = -0.6f;                    // -0.3 -> nearest -0.28444 (4)
    Nf4Params p;
    p.block_size = 32;
    p.double_quant = false;
    auto t = quantize(w.data(), Shape{1, 32}, p);
    ASSERT_TRUE(t.ok()) << t.error().message;
    ASSERT_EQ(t->packed.size(), 16u);
    EXPECT_EQ(t->packed[0], (15 << 4) | 0); // first element in the HIGH nibble
    EXPECT_EQ(t->packed[1], (9 << 4) | 7);
    EXPECT_EQ(t->packed[2] >> 4, 4);
    EXPECT_EQ(t->absmax[0], 2.0f);
    std::vector<float> out(32);
    dequantize(*t, out.data());
    EXPECT_EQ(out[0], 2.0f);
    EXPECT_EQ(out[2], 0.16093020141124725f * 2);
}

TEST(Nf4, MidpointsGoToTheLowerCodeAndZeroBlocksToZero) {
    const auto& c = code_table(QuantType::kNf4);
    // A value exactly between codes 8 and 9 in f32 arithmetic: argmin picks 8.
    const float mid = (c[8] + c[9]) / 2;
    std::vector<float> w(32, 0.0f);
    w[0] = 1.0f;
    w[1] = mid;
    Nf4Params p;
    p.block_size = 32;
    p.double_quant = false;
    auto t = quantize(w.data(), Shape{32}, p);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->packed[0] & 0x0f, 8); // torch.bucketize(right=False): a value on a midpoint takes the lower code
    w[1] = std::nextafter(mid, 1.0f);
    auto t2 = quantize(w.data(), Shape{32}, p);
    ASSERT_TRUE(t2.ok());
    EXPECT_EQ(t2->packed[0] & 0x0f, 9);
    std::vector<float> z(64, 0.0f);
    auto tz = quantize(z.data(), Shape{64}, p);
    ASSERT_TRUE(tz.ok());
    for (uint8_t b : tz->packed) EXPECT_EQ(b, 0x77); // absmax clamped to 1e-38: every value is code 7 (0.0)
    std::vector<float> out(64, 1.0f);
    dequantize(*tz, out.data());
    for (float v : out) EXPECT_EQ(v, 0.0f);
}

TEST(Nf4, OddLengthPadsWithTheCodeOfZero) {
    std::vector<float> w = {1.0f, -1.0f, 0.5f};
    Nf4Params p;
    p.block_size = 32;
    auto t = quantize(w.data(), Shape{3}, p);
    ASSERT_TRUE(t.ok());
    ASSERT_EQ(t->packed.size(), 2u);
    EXPECT_EQ(t->packed[1] & 0x0f, 7); // 0.0 is NF4 code 7
}

struct ErrorCase {
    QuantType type;
    int64_t block;
    bool dq;
    double bound; // RMSE/sigma on N(0,1); measured NF4 b64 ~0.097, FP4 b64 ~0.11
};

class Nf4Error : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(Nf4Error, RmseBoundAndRecordsRoundTrip) {
    const ErrorCase c = GetParam();
    const auto w = gaussian(128 * 300 + 32, 7); // not a multiple of 256 blocks: partial nested block
    Nf4Params p;
    p.quant_type = c.type;
    p.block_size = c.block;
    p.double_quant = c.dq;
    auto t = quantize(w.data(), Shape{int64_t(w.size())}, p);
    ASSERT_TRUE(t.ok()) << t.error().message;
    std::vector<float> out(w.size());
    dequantize(*t, out.data());
    const double e = rel_rmse(w, out);
    EXPECT_LT(e, c.bound) << quant_type_name(c.type) << " block " << c.block;
    EXPECT_GT(e, c.bound * 0.5); // the bound is tight enough to notice a regression
    const auto recs = to_records(*t);
    auto back = from_records(recs);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->packed, t->packed);
    EXPECT_EQ(back->absmax_q, t->absmax_q);
    EXPECT_EQ(back->absmax, t->absmax);
    EXPECT_EQ(back->nested_absmax, t->nested_absmax);
    EXPECT_EQ(back->offset, t->offset); // python repr round-trips the f32 offset
    std::vector<float> out2(w.size());
    dequantize(*back, out2.data());
    EXPECT_EQ(out, out2);
}

INSTANTIATE_TEST_SUITE_P(
    Grid, Nf4Error,
    ::testing::Values(ErrorCase{QuantType::kNf4, 64, true, 0.105}, ErrorCase{QuantType::kNf4, 64, false, 0.105},
                      ErrorCase{QuantType::kNf4, 32, true, 0.095}, ErrorCase{QuantType::kNf4, 4096, true, 0.16},
                      ErrorCase{QuantType::kFp4, 64, true, 0.125}, ErrorCase{QuantType::kFp4, 128, false, 0.14}));

TEST(Nf4, DoubleQuantAbsmaxIsClose) {
    const auto w = gaussian(64 * 1000, 3);
    Nf4Params p;
    auto t = quantize(w.data(), Shape{1000, 64}, p);
    Nf4Params p2 = p;
    p2.double_quant = false;
    auto plain = quantize(w.data(), Shape{1000, 64}, p2);
    ASSERT_TRUE(t.ok() && plain.ok());
    const auto a = block_absmax(*t);
    ASSERT_EQ(a.size(), plain->absmax.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], plain->absmax[i], 0.01 * plain->absmax[i]);
    EXPECT_EQ(t->nested_absmax.size(), 4u); // ceil(1000 / 256)
}

TEST(Nf4, QuantStateJsonMatchesBitsandbytesText) {
    std::vector<float> w(128, 0.25f);
    w[5] = -1.5f;
    Nf4Params p;
    auto t = quantize(w.data(), Shape{2, 64}, p);
    ASSERT_TRUE(t.ok());
    const auto recs = to_records(*t);
    const TensorRecord* s = find_record(recs, "weight.quant_state.bitsandbytes__nf4");
    ASSERT_NE(s, nullptr);
    const std::string json(s->bytes.begin(), s->bytes.end());
    const std::string expect = R"({"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [2, 64], )"
                               R"("nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": )" +
                               python_float_repr(double(t->offset)) + "}";
    EXPECT_EQ(json, expect);
    EXPECT_EQ(t->offset, 0.875f); // mean(1.5, 0.25)
    EXPECT_EQ(find_record(recs, "weight")->shape, (Shape{64, 1}));
}

TEST(Nf4, PythonFloatRepr) {
    EXPECT_EQ(python_float_repr(0.875), "0.875");
    EXPECT_EQ(python_float_repr(1.0), "1.0");
    EXPECT_EQ(python_float_repr(1e-05), "1e-05");
    EXPECT_EQ(python_float_repr(0.0001), "0.0001");
    EXPECT_EQ(python_float_repr(double(0.1f)), "0.10000000149011612");
    EXPECT_EQ(python_float_repr(1e16), "1e+16");
    EXPECT_EQ(python_float_repr(123456.0), "123456.0");
    EXPECT_EQ(python_float_repr(-2.5e-7), "-2.5e-07");
}

TEST(Nf4, BadParamsAndRecords) {
    std::vector<float> w(64, 1.0f);
    for (int64_t b : {16, 48, 8192}) {
        Nf4Params p;
        p.block_size = b;
        auto t = quantize(w.data(), Shape{64}, p);
        ASSERT_FALSE(t.ok());
        EXPECT_EQ(t.error().code, ErrorCode::kUsage);
        EXPECT_NE(t.error().message.find("power of two"), std::string::npos);
    }
    w[3] = NAN;
    auto tn = quantize(w.data(), Shape{64}, Nf4Params{});
    ASSERT_FALSE(tn.ok());
    EXPECT_EQ(tn.error().code, ErrorCode::kBadInput);
    w[3] = 1.0f;
    auto t = quantize(w.data(), Shape{64}, Nf4Params{});
    ASSERT_TRUE(t.ok());
    auto recs = to_records(*t);
    auto missing = recs;
    missing.erase(missing.begin() + 1); // weight.absmax
    auto r1 = from_records(missing);
    ASSERT_FALSE(r1.ok());
    EXPECT_NE(r1.error().message.find("weight.absmax"), std::string::npos);
    auto short_w = recs;
    short_w[0].bytes.pop_back();
    short_w[0].shape = Shape{31, 1};
    auto r2 = from_records(short_w);
    ASSERT_FALSE(r2.ok());
    EXPECT_NE(r2.error().message.find("'weight'"), std::string::npos);
    auto bad_json = recs;
    bad_json.back().bytes = {'{', 'x'};
    bad_json.back().shape = Shape{2};
    auto r3 = from_records(bad_json);
    ASSERT_FALSE(r3.ok());
    EXPECT_EQ(r3.error().code, ErrorCode::kBadInput);
    EXPECT_FALSE(from_records({}).ok());
}

} // namespace
} // namespace lowbit::scheme::nf4
