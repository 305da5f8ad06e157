// SPDX-License-Identifier: MIT
// GPTQ onto GGUF grids: without error feedback (diagonal H) the bytes equal the scheme's own quantizer (legacy:
// the plain ref; k-quants: the weighted quantizer with importance diag(H)/2); with a real H the layer output error
// is lower than plain block quantization; Ŵ of the loop equals the scheme's decoding of the packed bytes.
#include "quantize/gptq/gguf_grid.h"
#include "scheme/scheme_list.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::quantize::gptq {
namespace {

const DType kTypes[] = {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                        DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

bool is_k(DType t) {
    return dtype_block_elems(t) == 256;
}

// [n, k] weights with a few special rows: all zero, one zero sub-block, tiny values, one outlier.
std::vector<float> make_weights(uint32_t seed, int64_t n, int64_t k) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> w(static_cast<size_t>(n * k));
    for (auto& v : w) v = g(rng) * 0.05f;
    for (int64_t c = 0; c < k; ++c) w[size_t(1 * k + c)] = 0.0f;
    for (int64_t c = 32; c < 64; ++c) w[size_t(2 * k + c)] = 0.0f;
    for (int64_t c = 0; c < k; ++c) w[size_t(3 * k + c)] *= 1e-6f;
    w[size_t(4 * k + 5)] = 1.5f;
    return w;
}

struct Inputs {
    int64_t t = 0, k = 0;
    std::vector<float> x; // [t, k]
};

// Correlated inputs with a few large channels, as real activations have.
Inputs make_inputs(uint32_t seed, int64_t t, int64_t k) {
    Inputs in{t, k, std::vector<float>(size_t(t * k))};
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> base(static_cast<size_t>(t));
    for (auto& v : base) v = g(rng);
    for (int64_t i = 0; i < t; ++i)
        for (int64_t c = 0; c < k; ++c)
            in.x[size_t(i * k + c)] = (0.7f * base[size_t(i)] + g(rng)) * (c % 13 == 0 ? 6.0f : 1.0f);
    return in;
}

double output_error(const std::vector<float>& w, const std::vector<float>& wq, int64_t n, const Inputs& in) {
    double e = 0.0;
    for (int64_t i = 0; i < in.t; ++i)
        for (int64_t r = 0; r < n; ++r) {
            double d = 0.0;
            for (int64_t c = 0; c < in.k; ++c)
                d += double(w[size_t(r * in.k + c)] - wq[size_t(r * in.k + c)]) * in.x[size_t(i * in.k + c)];
            e += d * d;
        }
    return e;
}

std::vector<float> decode(DType type, const std::vector<uint8_t>& bytes, int64_t n, int64_t k) {
    const auto* s = scheme::find_scheme(type);
    const size_t row_bytes = size_t(k / dtype_block_elems(type) * dtype_block_bytes(type));
    std::vector<float> out(static_cast<size_t>(n * k));
    for (int64_t r = 0; r < n; ++r) s->dequantize_row(bytes.data() + size_t(r) * row_bytes, out.data() + r * k, k);
    return out;
}

// Plain block quantization: the legacy ref, the k-quants with the same importance the grid uses.
std::vector<uint8_t> block_quantize(DType type, const std::vector<float>& w, int64_t n, int64_t k,
                                    const std::vector<float>& importance) {
    const auto* s = scheme::find_scheme(type);
    const size_t row_bytes = size_t(k / dtype_block_elems(type) * dtype_block_bytes(type));
    std::vector<uint8_t> out(row_bytes * size_t(n));
    for (int64_t r = 0; r < n; ++r)
        s->quantize_row(w.data() + r * k, out.data() + size_t(r) * row_bytes, k,
                        is_k(type) ? importance.data() : nullptr);
    return out;
}

struct GridRun {
    GptqResult r;
    std::vector<uint8_t> bytes;
};

GridRun run_grid(DType type, const std::vector<float>& w, int64_t n, int64_t k, std::vector<double> h) {
    auto grid = GgufGrid::create(type, n, k);
    EXPECT_TRUE(grid.ok());
    GptqOptions opt;
    opt.group_size = (*grid)->required_group_size();
    auto r = gptq_quantize_with(w.data(), n, k, std::move(h), opt, **grid);
    EXPECT_TRUE(r.ok()) << r.error().message;
    auto bytes = (*grid)->pack(*r);
    EXPECT_TRUE(bytes.ok()) << bytes.error().message;
    return {std::move(*r), std::move(*bytes)};
}

TEST(GgufGrid, DiagonalHessianEqualsBlockQuantizer) {
    const int64_t n = 8, k = 512;
    const std::vector<float> w = make_weights(3, n, k);
    std::mt19937 rng(5);
    std::uniform_real_distribution<double> u(0.05, 4.0);
    std::vector<double> h(static_cast<size_t>(k * k), 0.0);
    std::vector<float> importance(static_cast<size_t>(k));
    for (int64_t c = 0; c < k; ++c) {
        h[size_t(c * k + c)] = u(rng);
        importance[size_t(c)] = float(h[size_t(c * k + c)] / 2.0);
    }
    for (DType type : kTypes) {
        SCOPED_TRACE(dtype_name(type));
        const GridRun run = run_grid(type, w, n, k, h);
        const std::vector<uint8_t> ref = block_quantize(type, w, n, k, importance);
        ASSERT_EQ(run.bytes.size(), ref.size());
        EXPECT_EQ(std::memcmp(run.bytes.data(), ref.data(), ref.size()), 0);
        const std::vector<float> deq = decode(type, run.bytes, n, k);
        EXPECT_EQ(std::memcmp(deq.data(), run.r.dequant.data(), deq.size() * sizeof(float)), 0);
    }
}

TEST(GgufGrid, RealHessianBeatsBlockQuantization) {
    const int64_t n = 24, k = 512;
    const std::vector<float> w = make_weights(11, n, k);
    const Inputs in = make_inputs(13, 1024, k);
    HessianAccumulator acc(k);
    acc.add(in.x.data(), in.t);
    const std::vector<double> h = acc.finish();
    std::vector<float> importance(static_cast<size_t>(k));
    for (int64_t c = 0; c < k; ++c) importance[size_t(c)] = float(h[size_t(c * k + c)] / 2.0);
    for (DType type : kTypes) {
        SCOPED_TRACE(dtype_name(type));
        const GridRun run = run_grid(type, w, n, k, h);
        const std::vector<float> deq = decode(type, run.bytes, n, k);
        EXPECT_EQ(std::memcmp(deq.data(), run.r.dequant.data(), deq.size() * sizeof(float)), 0);
        const double e_gptq = output_error(w, deq, n, in);
        const double e_block = output_error(w, decode(type, block_quantize(type, w, n, k, importance), n, k), n, in);
        EXPECT_LT(e_gptq, 0.8 * e_block) << "gptq " << e_gptq << " block " << e_block;
    }
}

TEST(GgufGrid, StaticGroupsWithActOrderStayOnTheGrid) {
    const int64_t n = 8, k = 512;
    const std::vector<float> w = make_weights(17, n, k);
    const Inputs in = make_inputs(19, 512, k);
    HessianAccumulator acc(k);
    acc.add(in.x.data(), in.t);
    for (DType type : {DType::kQ4_0, DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ6_K}) {
        SCOPED_TRACE(dtype_name(type));
        auto grid = GgufGrid::create(type, n, k);
        ASSERT_TRUE(grid.ok());
        GptqOptions opt;
        opt.group_size = (*grid)->required_group_size();
        opt.desc_act = opt.static_groups = true;
        auto r = gptq_quantize_with(w.data(), n, k, acc.finish(), opt, **grid);
        ASSERT_TRUE(r.ok()) << r.error().message;
        auto bytes = (*grid)->pack(*r);
        ASSERT_TRUE(bytes.ok());
        const std::vector<float> deq = decode(type, *bytes, n, k);
        EXPECT_EQ(std::memcmp(deq.data(), r->dequant.data(), deq.size() * sizeof(float)), 0);
    }
}

TEST(GgufGrid, Errors) {
    auto bad_type = GgufGrid::create(DType::kIQ4_NL, 4, 256);
    ASSERT_FALSE(bad_type.ok());
    EXPECT_EQ(bad_type.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(bad_type.error().message.find("no grid"), std::string::npos);
    auto bad_cols = GgufGrid::create(DType::kQ4_K, 4, 288);
    ASSERT_FALSE(bad_cols.ok());
    EXPECT_EQ(bad_cols.error().code, ErrorCode::kUsage);
    auto grid = GgufGrid::create(DType::kQ4_0, 4, 256);
    ASSERT_TRUE(grid.ok());
    GptqOptions opt; // group 128 != the block's 32
    std::vector<float> w(4 * 256, 0.1f);
    std::vector<double> h(256 * 256, 0.0);
    for (int c = 0; c < 256; ++c) h[size_t(c * 256 + c)] = 1.0;
    auto r = gptq_quantize_with(w.data(), 4, 256, h, opt, **grid);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUsage);
}

} // namespace
} // namespace lowbit::quantize::gptq
