// SPDX-License-Identifier: MIT
// AWQ loader row: AutoAWQ GEMM records load as the scheme's dequantized weights (transformers' and AutoAWQ's
// config keys, "GEMM" in either case); other versions / backends / bits are refused as unsupported naming the
// setting; shape mismatches (config group size, GEMV-shaped tensors) are bad input naming the tensor.
#include "model/memory_store.h"
#include "model/quantized/quant_loader.h"
#include "model/quantized/repack.h"
#include "scheme/awq/awq_pack.h"

#include <algorithm>
#include <gtest/gtest.h>
#include <random>

namespace lowbit::model::quantized {
namespace {

using scheme::awq::AwqLinear;

AwqLinear random_linear(int64_t n_out, int64_t n_in, int64_t group, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> code(0, 15);
    std::uniform_real_distribution<float> sc(0.001f, 0.05f);
    AwqLinear l;
    l.n_out = n_out, l.n_in = n_in, l.group_size = group;
    const int64_t n_groups = group == -1 ? 1 : n_in / group;
    for (int64_t i = 0; i < n_out * n_in; ++i) l.codes.push_back(code(rng));
    for (int64_t i = 0; i < n_out * n_groups; ++i) l.scales.push_back(sc(rng)), l.zeros.push_back(code(rng));
    return l;
}

struct Module {
    std::string prefix;
    AwqLinear linear;
};

std::vector<Module> modules(int64_t group) {
    return {{"model.layers.0.self_attn.o_proj", random_linear(64, 64, group, 3)},
            {"model.layers.0.mlp.down_proj", random_linear(64, 128, group, 4)}};
}

std::shared_ptr<MemoryStore> store_of(const std::vector<Module>& mods) {
    auto s = std::make_shared<MemoryStore>();
    for (const auto& m : mods) {
        auto recs = scheme::awq::pack_gemm(m.linear);
        EXPECT_TRUE(recs.ok()) << recs.error().message;
        for (auto& r : *recs) EXPECT_TRUE(s->add_raw(m.prefix + "." + r.suffix, r.dtype, r.shape, r.bytes).ok());
    }
    return s;
}

Result<std::shared_ptr<const format::TensorStore>> load(std::shared_ptr<MemoryStore> s, const std::string& qc) {
    return wrap_quantized(std::move(s), R"({"quantization_config": )" + qc + "}", format::ModelConfig{});
}

void expect_weights(const format::TensorStore& s, const std::vector<Module>& mods) {
    for (const auto& m : mods) {
        auto v = s.view(m.prefix + ".weight");
        ASSERT_TRUE(v.ok()) << v.error().message;
        auto recs = scheme::awq::pack_gemm(m.linear); // scales through f16
        auto want = scheme::awq::dequantize(
            *scheme::awq::unpack_gemm(*recs, 4, m.linear.group_size, m.linear.n_out, m.linear.n_in));
        ASSERT_EQ(v->n_elems(), int64_t(want.size()));
        EXPECT_EQ(v->dtype, DType::kI4Z) << m.prefix << ": kept packed (repack.h)";
        EXPECT_EQ(dense_weight(*v), want) << m.prefix << ": the repack dequantizes bit-exactly";
        EXPECT_FALSE(s.find(m.prefix + ".qweight")) << "packed records stay hidden";
    }
}

TEST(AwqLoad, TransformersAndAutoAwqKeysLoad) {
    const auto mods = modules(32);
    auto t = load(store_of(mods), R"({"quant_method": "awq", "bits": 4, "group_size": 32, "zero_point": true,
        "version": "gemm", "modules_to_not_convert": null})");
    ASSERT_TRUE(t.ok()) << t.error().message;
    expect_weights(**t, mods);
    auto a = load(store_of(mods), R"({"quant_method": "awq", "w_bit": 4, "q_group_size": 32, "version": "GEMM"})");
    ASSERT_TRUE(a.ok()) << a.error().message;
    expect_weights(**a, mods);
    // transformers 5 / GPTQModel: "format" names the layout, "backend" only the kernels.
    auto t5 = load(store_of(mods), R"({"quant_method": "awq", "bits": 4, "group_size": 32, "format": "gemm",
        "backend": "auto", "sym": true, "desc_act": false})");
    ASSERT_TRUE(t5.ok()) << t5.error().message;
    expect_weights(**t5, mods);
    const auto per_channel = modules(-1);
    auto pc = load(store_of(per_channel), R"({"quant_method": "awq", "bits": 4, "group_size": -1})");
    ASSERT_TRUE(pc.ok()) << pc.error().message;
    expect_weights(**pc, per_channel);
}

TEST(AwqLoad, OtherVersionsBackendsAndBitsAreUnsupported) {
    const auto mods = modules(32);
    for (const char* version : {"gemv", "gemv_fast", "marlin", "exllama", "ipex"}) {
        auto r = load(store_of(mods), std::string(R"({"quant_method": "awq", "bits": 4, "group_size": 32, )") +
                                          R"("version": ")" + version + R"("})");
        ASSERT_FALSE(r.ok()) << version;
        EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
        EXPECT_NE(r.error().message.find(std::string("'") + version + "'"), std::string::npos) << r.error().message;
    }
    auto f = load(store_of(mods), R"({"quant_method": "awq", "bits": 4, "group_size": 32, "format": "gemv_fast"})");
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.error().message.find("'gemv_fast'"), std::string::npos) << f.error().message;
    auto b = load(store_of(mods), R"({"quant_method": "awq", "bits": 4, "group_size": 32, "backend": "llm-awq"})");
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(b.error().message.find("'llm-awq'"), std::string::npos) << b.error().message;
    auto bits = load(store_of(mods), R"({"quant_method": "awq", "bits": 3, "group_size": 32})");
    ASSERT_FALSE(bits.ok());
    EXPECT_EQ(bits.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(bits.error().message.find("3 bits"), std::string::npos) << bits.error().message;
}

TEST(AwqLoad, ShapeMismatchesNameTheTensor) {
    const auto mods = modules(32);
    // Config group size 64 against data of group 32: qzeros rows disagree.
    auto g = load(store_of(mods), R"({"quant_method": "awq", "bits": 4, "group_size": 64})");
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.error().code, ErrorCode::kBadInput);
    EXPECT_NE(g.error().message.find("model.layers.0.mlp.down_proj"), std::string::npos) << g.error().message;
    EXPECT_NE(g.error().message.find("'qzeros'"), std::string::npos) << g.error().message;
    // scales of another width (e.g. a GEMV checkpoint labelled gemm).
    auto s = store_of(mods);
    const std::string p = "model.layers.0.self_attn.o_proj";
    ASSERT_TRUE(s->add_raw(p + ".scales", DType::kF16, Shape{64, 8}, std::vector<uint8_t>(64 * 8 * 2)).ok());
    auto r = load(s, R"({"quant_method": "awq", "bits": 4, "group_size": 32})");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find(p), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("'scales'"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("[2, 64]"), std::string::npos) << r.error().message;
    // A float qweight.
    s = store_of(mods);
    ASSERT_TRUE(s->add_raw(p + ".qweight", DType::kF32, Shape{64, 8}, std::vector<uint8_t>(64 * 8 * 4)).ok());
    auto f = load(s, R"({"quant_method": "awq", "bits": 4, "group_size": 32})");
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.error().message.find(p + ".qweight"), std::string::npos) << f.error().message;
    // No packed tensor at all.
    auto empty = load(std::make_shared<MemoryStore>(), R"({"quant_method": "awq", "bits": 4})");
    ASSERT_FALSE(empty.ok());
    EXPECT_EQ(empty.error().code, ErrorCode::kBadInput);
}

} // namespace
} // namespace lowbit::model::quantized
