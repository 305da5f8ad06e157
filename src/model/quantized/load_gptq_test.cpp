// SPDX-License-Identifier: MIT
// GPTQ loader row: zero-point convention read from the data (symmetric 2^(b-1)-1 vs 2^(b-1); asymmetric means
// from real RTN groups of Gaussian weights) and refused when it contradicts checkpoint_format; shape / bits per
// weight checks naming the tensor; the loaded weights equal the scheme's dequantization.
#include "model/memory_store.h"
#include "model/quantized/gptq_zero_convention.h"
#include "model/quantized/quant_loader.h"
#include "model/quantized/repack.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::model::quantized {
namespace {

using scheme::gptq::GptqFormat;
using scheme::gptq::GptqLinear;

// AutoGPTQ's RTN quantizer per group of `g` inputs (sym: zero 2^(b-1); asym: zero = round(-min/scale)).
GptqLinear rtn(int64_t n_out, int64_t n_in, int bits, int64_t g, bool sym, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    GptqLinear l;
    l.bits = bits, l.n_out = n_out, l.n_in = n_in, l.n_groups = n_in / g;
    const int maxq = (1 << bits) - 1;
    l.codes.resize(size_t(n_out * n_in));
    for (int64_t n = 0; n < n_out; ++n)
        for (int64_t gi = 0; gi < l.n_groups; ++gi) {
            std::vector<float> w(static_cast<size_t>(g));
            for (auto& x : w) x = nd(rng);
            float lo = std::min(0.0f, *std::min_element(w.begin(), w.end()));
            float hi = std::max(0.0f, *std::max_element(w.begin(), w.end()));
            if (sym) hi = std::max(-lo, hi), lo = -hi;
            const float scale = (hi - lo) / float(maxq);
            const int zero = sym ? (maxq + 1) / 2 : int(std::lround(-lo / scale));
            l.scales.push_back(scale);
            l.zeros.push_back(zero);
            for (int64_t j = 0; j < g; ++j)
                l.codes[size_t(n * n_in + gi * g + j)] =
                    std::clamp(int(std::lround(w[size_t(j)] / scale)) + zero, 0, maxq);
        }
    // scales/zeros are [N, G] in the struct: rows were pushed n-major, which is that order.
    for (int64_t k = 0; k < n_in; ++k) l.g_idx.push_back(int32_t(k / g));
    return l;
}

struct Module {
    std::string prefix;
    GptqLinear linear;
};

std::vector<Module> modules(int bits, bool sym) {
    return {{"model.layers.0.mlp.up_proj", rtn(128, 64, bits, 32, sym, 1)},
            {"model.layers.0.mlp.down_proj", rtn(64, 128, bits, 32, sym, 2)}};
}

std::shared_ptr<MemoryStore> store_of(const std::vector<Module>& mods, GptqFormat stored_as) {
    auto s = std::make_shared<MemoryStore>();
    for (const auto& m : mods) {
        auto recs = scheme::gptq::pack(m.linear, stored_as);
        EXPECT_TRUE(recs.ok()) << recs.error().message;
        for (auto& r : *recs) EXPECT_TRUE(s->add_raw(m.prefix + "." + r.suffix, r.dtype, r.shape, r.bytes).ok());
    }
    return s;
}

std::string config(int bits, const std::string& extra) {
    return R"({"quantization_config": {"quant_method": "gptq", "bits": )" + std::to_string(bits) +
           R"(, "group_size": 32)" + extra + "}}";
}

Result<std::shared_ptr<const format::TensorStore>> load(std::shared_ptr<MemoryStore> s, const std::string& cfg) {
    return wrap_quantized(std::move(s), cfg, format::ModelConfig{});
}

void expect_weights(const format::TensorStore& s, const std::vector<Module>& mods, GptqFormat truth) {
    for (const auto& m : mods) {
        auto v = s.view(m.prefix + ".weight");
        ASSERT_TRUE(v.ok()) << v.error().message;
        // The truth after a pack/unpack round trip (scales rounded to f16; v1 wraps a zero of 0).
        auto recs = scheme::gptq::pack(m.linear, truth);
        auto want =
            scheme::gptq::dequantize(*scheme::gptq::unpack(*recs, truth, m.linear.bits, m.linear.n_out, m.linear.n_in));
        ASSERT_EQ(v->n_elems(), int64_t(want.size()));
        // 4- and 8-bit groups of 32 stay packed (repack.h); 2/3 bits are dense f32. Either way bit-exact.
        EXPECT_EQ(v->dtype, m.linear.bits == 4   ? DType::kI4Z
                            : m.linear.bits == 8 ? DType::kI8Z
                                                 : DType::kF32)
            << m.prefix;
        const std::vector<float> got = dense_weight(*v);
        EXPECT_EQ(got, want) << m.prefix;
    }
}

TEST(GptqZeroConvention, SymmetricValues) {
    std::vector<int64_t> h(16, 0);
    h[7] = 100;
    EXPECT_EQ(judge_zero_convention(h, 4).format, GptqFormat::kV1);
    h[7] = 0, h[8] = 100;
    EXPECT_EQ(judge_zero_convention(h, 4).format, GptqFormat::kV2);
    h[8] = 0, h[5] = 100;
    const auto v = judge_zero_convention(h, 4);
    EXPECT_FALSE(v.format.has_value());
    EXPECT_NE(v.evidence.find("neither"), std::string::npos) << v.evidence;
    std::vector<int64_t> h8(256, 0);
    h8[128] = 9;
    EXPECT_EQ(judge_zero_convention(h8, 8).format, GptqFormat::kV2);
    std::vector<int64_t> h2(4, 0);
    h2[1] = 9;
    EXPECT_EQ(judge_zero_convention(h2, 2).format, GptqFormat::kV1);
    EXPECT_FALSE(judge_zero_convention(std::vector<int64_t>(4, 0), 2).format.has_value());
}

TEST(GptqZeroConvention, AsymmetricMeansOfRealGroups) {
    for (int bits : {2, 3, 4, 8}) {
        for (GptqFormat f : {GptqFormat::kV1, GptqFormat::kV2}) {
            std::vector<int64_t> h(size_t(1) << bits, 0);
            for (const auto& m : modules(bits, false))
                for (int32_t z : m.linear.zeros) {
                    const int32_t stored = f == GptqFormat::kV1 ? (z - 1) & ((1 << bits) - 1) : z;
                    h[size_t(stored)] += 1;
                }
            const auto v = judge_zero_convention(h, bits);
            if (bits == 8) // 512 zeros spread over ~100 levels: never a wrong verdict, but possibly none
                EXPECT_TRUE(!v.format || *v.format == f) << v.evidence;
            else
                EXPECT_EQ(v.format, f) << bits << " bits: " << v.evidence;
        }
    }
    // A flat histogram (no structure) is inconclusive.
    EXPECT_FALSE(judge_zero_convention(std::vector<int64_t>(16, 10), 4).format.has_value());
}

TEST(GptqLoad, AgreeingConventionsLoadTheDequantizedWeights) {
    for (bool sym : {true, false})
        for (GptqFormat f : {GptqFormat::kV1, GptqFormat::kV2}) {
            const auto mods = modules(4, sym);
            const std::string fmt_key = f == GptqFormat::kV2 ? R"(, "checkpoint_format": "gptq_v2")" : "";
            auto s = load(store_of(mods, f), config(4, fmt_key + (sym ? "" : R"(, "sym": false)")));
            ASSERT_TRUE(s.ok()) << s.error().message;
            expect_weights(**s, mods, f);
        }
}

TEST(GptqLoad, SymmetricContradictionIsRefused) {
    const auto mods = modules(4, true);
    auto v2_as_v1 = load(store_of(mods, GptqFormat::kV2), config(4, R"(, "checkpoint_format": "gptq")"));
    ASSERT_FALSE(v2_as_v1.ok());
    EXPECT_EQ(v2_as_v1.error().code, ErrorCode::kBadInput);
    const auto& m = v2_as_v1.error().message;
    EXPECT_NE(m.find("checkpoint_format is 'gptq'"), std::string::npos) << m;
    EXPECT_NE(m.find("data says 'gptq_v2'"), std::string::npos) << m;
    EXPECT_NE(m.find("are 8"), std::string::npos) << m;
    // Legacy configs (no checkpoint_format) are v1: v2 data contradicts them too.
    auto legacy = load(store_of(mods, GptqFormat::kV2), config(4, ""));
    ASSERT_FALSE(legacy.ok());
    EXPECT_NE(legacy.error().message.find("not set"), std::string::npos) << legacy.error().message;
    auto v1_as_v2 = load(store_of(mods, GptqFormat::kV1), config(4, R"(, "checkpoint_format": "gptq_v2")"));
    ASSERT_FALSE(v1_as_v2.ok());
    EXPECT_NE(v1_as_v2.error().message.find("data says 'gptq'"), std::string::npos) << v1_as_v2.error().message;
    EXPECT_NE(v1_as_v2.error().message.find("are 7"), std::string::npos) << v1_as_v2.error().message;
}

TEST(GptqLoad, AsymmetricContradictionIsRefused) {
    const auto mods = modules(4, false);
    auto r = load(store_of(mods, GptqFormat::kV1), config(4, R"(, "sym": false, "checkpoint_format": "gptq_v2")"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_NE(r.error().message.find("asymmetric zero points average"), std::string::npos) << r.error().message;
    auto r2 = load(store_of(mods, GptqFormat::kV2), config(4, R"(, "sym": false)"));
    ASSERT_FALSE(r2.ok());
    EXPECT_NE(r2.error().message.find("data says 'gptq_v2'"), std::string::npos) << r2.error().message;
}

TEST(GptqLoad, BitsPerWeightAndShapeChecksNameTheTensor) {
    const auto mods = modules(4, true);
    // 4-bit data under an 8-bit (or 2-bit) config: qweight rows disagree with g_idx's K.
    for (int bits : {8, 2}) {
        auto r = load(store_of(mods, GptqFormat::kV1), config(bits, ""));
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
        EXPECT_NE(r.error().message.find("'model.layers.0.mlp.down_proj.qweight'"), std::string::npos)
            << r.error().message;
        EXPECT_NE(r.error().message.find("looks like 4-bit"), std::string::npos) << r.error().message;
    }
    // Wrong group size in the config.
    auto g = load(store_of(mods, GptqFormat::kV1), R"({"quantization_config": {"quant_method": "gptq", "bits": 4,
        "group_size": 64}})");
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.error().message.find(".scales' has 4 groups"), std::string::npos) << g.error().message;
    // Broken tensors: scales of the wrong width, qzeros of the wrong width, g_idx missing / out of range.
    const std::string p = "model.layers.0.mlp.up_proj";
    auto s = store_of(mods, GptqFormat::kV1);
    ASSERT_TRUE(s->add_raw(p + ".scales", DType::kF16, Shape{2, 64}, std::vector<uint8_t>(2 * 64 * 2)).ok());
    auto bad_scales = load(s, config(4, ""));
    ASSERT_FALSE(bad_scales.ok());
    EXPECT_NE(bad_scales.error().message.find("'" + p + ".scales' is [2, 64]"), std::string::npos)
        << bad_scales.error().message;
    s = store_of(mods, GptqFormat::kV1);
    ASSERT_TRUE(s->add_raw(p + ".qzeros", DType::kI32, Shape{2, 32}, std::vector<uint8_t>(2 * 32 * 4)).ok());
    auto bad_zeros = load(s, config(4, ""));
    ASSERT_FALSE(bad_zeros.ok());
    EXPECT_NE(bad_zeros.error().message.find("'" + p + ".qzeros' is [2, 32]"), std::string::npos)
        << bad_zeros.error().message;
    EXPECT_NE(bad_zeros.error().message.find("looks like 8-bit"), std::string::npos) << bad_zeros.error().message;
    s = store_of(mods, GptqFormat::kV1);
    s->remove(p + ".g_idx");
    auto no_gidx = load(s, config(4, ""));
    ASSERT_FALSE(no_gidx.ok());
    EXPECT_NE(no_gidx.error().message.find("'" + p + ".g_idx' is missing"), std::string::npos)
        << no_gidx.error().message;
    s = store_of(mods, GptqFormat::kV1);
    std::vector<int32_t> gi(64, 0);
    gi[3] = 9;
    std::vector<uint8_t> gi_bytes(64 * 4);
    std::memcpy(gi_bytes.data(), gi.data(), gi_bytes.size());
    ASSERT_TRUE(s->add_raw(p + ".g_idx", DType::kI32, Shape{64}, gi_bytes).ok());
    auto bad_gidx = load(s, config(4, ""));
    ASSERT_FALSE(bad_gidx.ok());
    EXPECT_EQ(bad_gidx.error().code, ErrorCode::kBadInput);
    EXPECT_NE(bad_gidx.error().message.find(p), std::string::npos) << bad_gidx.error().message;
    EXPECT_NE(bad_gidx.error().message.find("g_idx"), std::string::npos) << bad_gidx.error().message;
}

} // namespace
} // namespace lowbit::model::quantized
