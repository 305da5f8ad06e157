// SPDX-License-Identifier: MIT
// k-quant mix rules beyond the golden files (tests/e2e/ggml_golden_test.cpp covers Q2_K, Q3_K_M, Q4_K_M,
// Q4_0, Q4_1, Q6_K, Q8_0 on an 8-layer GQA-2 model): layer schedules, GQA/70B/expert bumps, row-length
// fallbacks, tied embeddings, imatrix-dependent choices and overrides, each as llama-quant.cpp states them.
#include "quantize/kquant/mix.h"

#include <algorithm>
#include <gtest/gtest.h>
#include <map>
#include <random>
#include <set>
#include <string>

namespace lowbit::quantize::kquant {
namespace {

struct Shape {
    int n_layer = 8;
    int64_t n_embd = 256;
    int64_t n_ff = 512;
    int n_head = 4;
    int n_head_kv = 2;
    int64_t n_vocab = 1024;
    bool tied = false;
    int n_expert = 0;
};

std::vector<MixTensor> llama_tensors(const Shape& s) {
    const int64_t head_dim = s.n_embd / s.n_head;
    const int64_t kv = head_dim * s.n_head_kv;
    std::vector<MixTensor> t;
    auto add = [&](std::string name, std::vector<int64_t> ne) { t.push_back({std::move(name), std::move(ne)}); };
    add("token_embd.weight", {s.n_embd, s.n_vocab});
    add("output_norm.weight", {s.n_embd});
    if (!s.tied) add("output.weight", {s.n_embd, s.n_vocab});
    for (int i = 0; i < s.n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        add(p + "attn_norm.weight", {s.n_embd});
        add(p + "attn_q.weight", {s.n_embd, s.n_embd});
        add(p + "attn_k.weight", {s.n_embd, kv});
        add(p + "attn_v.weight", {s.n_embd, kv});
        add(p + "attn_output.weight", {s.n_embd, s.n_embd});
        add(p + "ffn_norm.weight", {s.n_embd});
        add(p + "ffn_gate.weight", {s.n_embd, s.n_ff});
        add(p + "ffn_up.weight", {s.n_embd, s.n_ff});
        add(p + "ffn_down.weight", {s.n_ff, s.n_embd});
    }
    return t;
}

MixHparams hparams(const Shape& s) {
    return {"llama", s.n_layer, s.n_head, s.n_head_kv, s.n_expert};
}

std::map<std::string, DType> plan(const Shape& s, FileType ft, const MixOptions& opts = {}) {
    const auto tensors = llama_tensors(s);
    auto p = plan_mix(tensors, hparams(s), ft, opts);
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
    std::map<std::string, DType> out;
    if (!p.ok()) return out;
    for (size_t i = 0; i < tensors.size(); ++i) out[tensors[i].name] = p->types[i];
    return out;
}

std::string blk(int i, const char* what) {
    return "blk." + std::to_string(i) + "." + what + ".weight";
}

bool more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

TEST(KquantMix, Q4KMLayerScheduleOn32Layers) {
    Shape s;
    s.n_layer = 32;
    s.n_head = 32;
    s.n_head_kv = 8;
    s.n_embd = 4096 / 8; // keep the test small; rules only read names, ne[0] and hparams
    s.n_ff = 1024;
    const auto m = plan(s, FileType::kQ4_K_M);
    std::set<int> six;
    for (int i = 0; i < 32; ++i) {
        const DType want = more_bits(i, 32) ? DType::kQ6_K : DType::kQ4_K;
        EXPECT_EQ(m.at(blk(i, "attn_v")), want) << i;
        EXPECT_EQ(m.at(blk(i, "ffn_down")), want) << i;
        EXPECT_EQ(m.at(blk(i, "attn_q")), DType::kQ4_K) << i;
        EXPECT_EQ(m.at(blk(i, "attn_norm")), DType::kF32) << i;
        if (want == DType::kQ6_K) six.insert(i);
    }
    EXPECT_EQ(six, (std::set<int>{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}));
    EXPECT_EQ(m.at("output.weight"), DType::kQ6_K);
    EXPECT_EQ(m.at("token_embd.weight"), DType::kQ4_K);
}

TEST(KquantMix, TensorOrderDoesNotMatter) {
    Shape s;
    s.n_layer = 12; // two-digit layer numbers sort by number, not text
    auto tensors = llama_tensors(s);
    auto a = plan_mix(tensors, hparams(s), FileType::kQ3_K_M);
    ASSERT_TRUE(a.ok());
    std::map<std::string, DType> by_name;
    for (size_t i = 0; i < tensors.size(); ++i) by_name[tensors[i].name] = a->types[i];
    std::mt19937 rng(3);
    std::shuffle(tensors.begin(), tensors.end(), rng);
    auto b = plan_mix(tensors, hparams(s), FileType::kQ3_K_M);
    ASSERT_TRUE(b.ok());
    for (size_t i = 0; i < tensors.size(); ++i) EXPECT_EQ(b->types[i], by_name[tensors[i].name]) << tensors[i].name;
    const auto order = llama_tensor_order(tensors);
    ASSERT_EQ(order.size(), tensors.size());
    EXPECT_EQ(tensors[order[0]].name, "output.weight");
    EXPECT_EQ(tensors[order[1]].name, "output_norm.weight");
    EXPECT_EQ(tensors[order[2]].name, "token_embd.weight");
    EXPECT_EQ(tensors[order[3]].name, "blk.0.attn_k.weight");
    EXPECT_EQ(tensors[order.back()].name, "blk.11.ffn_up.weight");
    EXPECT_EQ(by_name[blk(0, "attn_v")], DType::kQ5_K); // i_attention_wv < 2
    EXPECT_EQ(by_name[blk(1, "attn_v")], DType::kQ5_K);
    EXPECT_EQ(by_name[blk(10, "attn_v")], DType::kQ4_K);
}

TEST(KquantMix, RowLengthFallbacks) {
    Shape s;
    s.n_embd = 320; // 320 % 256 != 0, 320 % 32 == 0
    s.n_head = 5;
    s.n_head_kv = 5;
    s.n_ff = 768; // ffn_down rows stay k-quant friendly
    const auto tensors = llama_tensors(s);
    auto p = plan_mix(tensors, hparams(s), FileType::kQ4_K_M);
    ASSERT_TRUE(p.ok()) << p.error().message;
    std::map<std::string, DType> m;
    for (size_t i = 0; i < tensors.size(); ++i) m[tensors[i].name] = p->types[i];
    EXPECT_EQ(m["output.weight"], DType::kQ8_0);     // nx % QK_K != 0 -> Q8_0
    EXPECT_EQ(m["token_embd.weight"], DType::kQ5_0); // Q4_K -> Q5_0
    EXPECT_EQ(m[blk(0, "attn_v")], DType::kQ8_0);    // Q6_K -> Q8_0
    EXPECT_EQ(m[blk(1, "attn_v")], DType::kQ5_0);
    EXPECT_EQ(m[blk(0, "ffn_down")], DType::kQ6_K); // 768 % 256 == 0
    EXPECT_GT(p->n_fallback, 0);
    // Q5_K -> Q5_1, Q3_K -> Q4_0 under Q5_K_S / Q3_K_S.
    EXPECT_EQ(plan(s, FileType::kQ5_K_S).at(blk(2, "attn_q")), DType::kQ5_1);
    EXPECT_EQ(plan(s, FileType::kQ3_K_S).at(blk(2, "attn_q")), DType::kQ4_0);
}

TEST(KquantMix, NoFallbackIsAnError) {
    Shape s;
    s.n_embd = 100; // not a multiple of 32
    s.n_head = 4;
    s.n_head_kv = 4;
    auto p = plan_mix(llama_tensors(s), hparams(s), FileType::kQ8_0);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(p.error().message.find("tensor 'output.weight' has rows of 100 values"), std::string::npos)
        << p.error().message;
}

TEST(KquantMix, TiedEmbeddingsTakeTheOutputType) {
    Shape s;
    s.tied = true;
    EXPECT_EQ(plan(s, FileType::kQ4_K_M).at("token_embd.weight"), DType::kQ6_K);
    EXPECT_EQ(plan(s, FileType::kQ8_0).at("token_embd.weight"), DType::kQ8_0);
}

TEST(KquantMix, GqaAnd70BAndExperts) {
    Shape s;
    s.n_head = 8;
    s.n_head_kv = 2; // GQA 4
    EXPECT_EQ(plan(s, FileType::kQ2_K).at(blk(3, "attn_v")), DType::kQ4_K);
    s.n_head_kv = 4; // GQA 2
    EXPECT_EQ(plan(s, FileType::kQ2_K).at(blk(3, "attn_v")), DType::kQ3_K);

    Shape big; // Llama-2-70B: 80 layers, 64 heads, 8 KV heads
    big.n_layer = 80;
    big.n_head = 64;
    big.n_head_kv = 8;
    big.n_embd = 512;
    const auto m70 = plan(big, FileType::kQ4_K_M);
    EXPECT_EQ(m70.at(blk(20, "attn_v")), DType::kQ5_K); // not a more-bits layer: Q4_K bumped to Q5_K
    EXPECT_EQ(m70.at(blk(0, "attn_v")), DType::kQ6_K);
    EXPECT_EQ(plan(big, FileType::kQ2_K).at(blk(20, "attn_v")), DType::kQ5_K);

    Shape moe;
    moe.n_expert = 8;
    const auto mm = plan(moe, FileType::kQ4_K_M);
    EXPECT_EQ(mm.at(blk(3, "attn_v")), DType::kQ8_0);
    EXPECT_EQ(mm.at(blk(3, "attn_k")), DType::kQ8_0);
    EXPECT_EQ(mm.at(blk(3, "attn_output")), DType::kQ5_K);
}

TEST(KquantMix, FileTypeSchedules) {
    Shape s; // 8 layers: n/8 = 1, n/16 = 0
    const auto ks = plan(s, FileType::kQ4_K_S);
    for (int i = 0; i < 8; ++i) {
        EXPECT_EQ(ks.at(blk(i, "attn_v")), i < 4 ? DType::kQ5_K : DType::kQ4_K) << i;
        EXPECT_EQ(ks.at(blk(i, "ffn_down")), i < 1 ? DType::kQ5_K : DType::kQ4_K) << i;
    }
    const auto k5m = plan(s, FileType::kQ5_K_M);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(k5m.at(blk(i, "ffn_down")), more_bits(i, 8) ? DType::kQ6_K : DType::kQ5_K);
    const auto k3l = plan(s, FileType::kQ3_K_L);
    EXPECT_EQ(k3l.at(blk(5, "attn_v")), DType::kQ5_K);
    EXPECT_EQ(k3l.at(blk(5, "ffn_down")), DType::kQ5_K);
    EXPECT_EQ(k3l.at(blk(5, "attn_output")), DType::kQ5_K);
    EXPECT_EQ(k3l.at(blk(5, "ffn_up")), DType::kQ3_K);
    const auto k3s = plan(s, FileType::kQ3_K_S);
    EXPECT_EQ(k3s.at(blk(5, "attn_v")), DType::kQ3_K);
    EXPECT_EQ(k3s.at("output.weight"), DType::kQ6_K);
    const auto f16 = plan(s, FileType::kF16);
    EXPECT_EQ(f16.at(blk(5, "attn_q")), DType::kF16);
    EXPECT_EQ(f16.at("output.weight"), DType::kF16);
    EXPECT_EQ(f16.at(blk(5, "ffn_norm")), DType::kF32);
}

TEST(KquantMix, ImatrixDependentChoices) {
    Shape s;
    MixOptions with;
    with.has_imatrix = true;
    EXPECT_EQ(plan(s, FileType::kQ4_0).at(blk(0, "ffn_down")), DType::kQ4_0);
    EXPECT_EQ(plan(s, FileType::kQ4_0, with).at(blk(0, "ffn_down")), DType::kQ4_1);
    EXPECT_EQ(plan(s, FileType::kQ4_0, with).at(blk(1, "ffn_down")), DType::kQ4_0);
    EXPECT_EQ(plan(s, FileType::kQ5_0, with).at(blk(0, "ffn_down")), DType::kQ5_1);
    const auto tensors = llama_tensors(s);
    auto q2ks = plan_mix(tensors, hparams(s), FileType::kQ2_K_S);
    ASSERT_TRUE(q2ks.ok());
    EXPECT_TRUE(q2ks->requires_imatrix);
    auto q2k = plan_mix(tensors, hparams(s), FileType::kQ2_K);
    ASSERT_TRUE(q2k.ok());
    EXPECT_FALSE(q2k->requires_imatrix);
}

TEST(KquantMix, OverridesAndPure) {
    Shape s;
    MixOptions o;
    o.output_type = DType::kQ8_0;
    o.token_embd_type = DType::kF16;
    const auto m = plan(s, FileType::kQ4_K_M, o);
    EXPECT_EQ(m.at("output.weight"), DType::kQ8_0);
    EXPECT_EQ(m.at("token_embd.weight"), DType::kF16);
    MixOptions pure;
    pure.pure = true;
    const auto p = plan(s, FileType::kQ4_K_M, pure);
    EXPECT_EQ(p.at("output.weight"), DType::kQ4_K);
    EXPECT_EQ(p.at(blk(0, "attn_v")), DType::kQ4_K);
    MixOptions leave;
    leave.quantize_output = false;
    EXPECT_EQ(plan(s, FileType::kQ4_K_M, leave).at("output.weight"), DType::kF32);
}

TEST(KquantMix, FileTypeNames) {
    EXPECT_EQ(file_type_from_name("q4_k_m"), FileType::kQ4_K_M);
    EXPECT_EQ(file_type_from_name("Q4_K"), FileType::kQ4_K_M); // llama-quantize alias
    EXPECT_EQ(file_type_from_name("Q3_K"), FileType::kQ3_K_M);
    EXPECT_EQ(file_type_from_name("Q8_0"), FileType::kQ8_0);
    EXPECT_FALSE(file_type_from_name("IQ2_XXS").has_value());
    EXPECT_EQ(file_type_from_id(15), FileType::kQ4_K_M);
    EXPECT_FALSE(file_type_from_id(19).has_value());
    EXPECT_EQ(file_type_name(FileType::kQ5_K_S), "Q5_K_S");
    EXPECT_EQ(default_dtype(FileType::kQ2_K_S), DType::kQ2_K);
    EXPECT_EQ(default_dtype(FileType::kAllF32), DType::kF32);
}

TEST(KquantMix, AllowsQuantization) {
    EXPECT_TRUE(allows_quantization({"blk.0.attn_q.weight", {256, 256}}));
    EXPECT_FALSE(allows_quantization({"blk.0.attn_norm.weight", {256}}));
    EXPECT_FALSE(allows_quantization({"blk.0.ffn_gate_inp.weight", {256, 8}}));
    EXPECT_FALSE(allows_quantization({"blk.0.attn_q.bias", {256, 2}}));
    EXPECT_FALSE(allows_quantization({"blk.0.attn_q.weight", {256, 1}})); // ggml_n_dims == 1
    EXPECT_TRUE(allows_quantization({"blk.0.ffn_down_exps.weight", {256, 512, 8}}));
}

} // namespace
} // namespace lowbit::quantize::kquant
