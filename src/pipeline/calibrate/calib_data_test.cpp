// SPDX-License-Identifier: MIT
// Calibration samples: seeded windows (deterministic, in range, from the token stream), and clean errors for
// a missing/empty file, too few tokens (with the count), seqlen beyond the context, no tokenizer.
#include "model/arch/arch_list.h"
#include "model/memory_store.h"
#include "pipeline/calibrate/calib_data.h"
#include "pipeline/calibrate/layer_view_store.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <numeric>
#include <unistd.h>

namespace lowbit::pipeline {
namespace {

std::vector<int32_t> iota_tokens(int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    std::iota(t.begin(), t.end(), 0);
    return t;
}

TEST(CalibData, SeededWindowsAreContiguousAndReproducible) {
    const auto tokens = iota_tokens(1000);
    CalibOptions o;
    o.n_samples = 8, o.seqlen = 50, o.seed = 3;
    auto a = sample_windows(tokens, o, "t");
    auto b = sample_windows(tokens, o, "t");
    ASSERT_TRUE(a.ok()) << a.error().message;
    EXPECT_EQ(*a, *b);
    ASSERT_EQ(a->size(), 8u);
    for (const auto& s : *a) {
        ASSERT_EQ(s.size(), 50u);
        for (size_t i = 1; i < s.size(); ++i) EXPECT_EQ(s[i], s[i - 1] + 1); // a window of the stream
        EXPECT_LE(s.back(), 999);
    }
    o.seed = 4;
    EXPECT_NE(*sample_windows(tokens, o, "t"), *a);
}

TEST(CalibData, TooFewTokensSaysHowMany) {
    CalibOptions o;
    o.n_samples = 4, o.seqlen = 100;
    auto r = sample_windows(iota_tokens(399), o, "small.txt");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_NE(r.error().message.find("has 399 tokens"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("400"), std::string::npos);
    auto e = sample_windows({}, o, "empty.txt");
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message.find("no tokens"), std::string::npos);
    o.seqlen = 0;
    EXPECT_EQ(sample_windows(iota_tokens(10), o, "x").error().code, ErrorCode::kUsage);
}

class CalibSessionTest : public ::testing::Test {
  protected:
    void SetUp() override {
        format::ModelConfig c;
        c.arch = "llama", c.vocab_size = 32, c.hidden_size = 32, c.intermediate_size = 64, c.n_layers = 1;
        c.n_heads = 2, c.n_kv_heads = 2, c.max_position_embeddings = 64;
        auto store =
            model::make_synthetic_model(c, *model::find_arch("llama"), model::SourceFormat::kHf, DType::kF32, 1);
        ASSERT_TRUE(store.ok());
        runtime::SessionOptions so;
        so.n_ctx = 64, so.n_threads = 1;
        auto s = runtime::Session::from_store(*store, c, model::SourceFormat::kHf, so);
        ASSERT_TRUE(s.ok()) << s.error().message;
        session_ = std::move(*s);
        dir_ = std::filesystem::temp_directory_path() / ("lowbit_calib_" + std::to_string(getpid()));
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::unique_ptr<runtime::Session> session_;
    std::filesystem::path dir_;
};

TEST_F(CalibSessionTest, CleanErrors) {
    CalibOptions o;
    o.n_samples = 2, o.seqlen = 16;
    auto none = load_calib_samples(*session_, o);
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().code, ErrorCode::kUsage);

    o.source = (dir_ / "missing.txt").string();
    auto missing = load_calib_samples(*session_, o);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, ErrorCode::kIo);
    EXPECT_NE(missing.error().message.find("missing.txt"), std::string::npos);

    std::ofstream(dir_ / "empty.txt").close();
    o.source = (dir_ / "empty.txt").string();
    auto empty = load_calib_samples(*session_, o);
    ASSERT_FALSE(empty.ok());
    EXPECT_EQ(empty.error().code, ErrorCode::kBadInput);
    EXPECT_NE(empty.error().message.find("empty"), std::string::npos);

    std::ofstream(dir_ / "text.txt") << "some calibration text";
    o.source = (dir_ / "text.txt").string();
    auto no_tok = load_calib_samples(*session_, o);
    ASSERT_FALSE(no_tok.ok());
    EXPECT_NE(no_tok.error().message.find("no tokenizer"), std::string::npos);

    o.seqlen = 65; // beyond the session context
    auto too_long = load_calib_samples(*session_, o);
    ASSERT_FALSE(too_long.ok());
    EXPECT_EQ(too_long.error().code, ErrorCode::kUsage);
    EXPECT_NE(too_long.error().message.find("context (64)"), std::string::npos);

    o.source = "self", o.seqlen = 16;
    auto self = load_calib_samples(*session_, o);
    ASSERT_FALSE(self.ok());
    EXPECT_NE(self.error().message.find("BOS"), std::string::npos);
}

// Issue #15: N x L from flags is sized through checked arithmetic against a stated limit, never allocated blind.
TEST(CalibData, CalibrationSizeIsCheckedBeforeAnythingIsAllocated) {
    CalibOptions o;
    o.n_samples = int64_t(1) << 40, o.seqlen = int64_t(1) << 40;
    auto e = check_calib_memory(o, 4096, uint64_t(1) << 40);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().code, ErrorCode::kOutOfMemory);
    EXPECT_NE(e.error().message.find("the calibration size overflows (the f32 hidden states of 1099511627776 samples "
                                     "x 1099511627776 tokens x 4096 values"),
              std::string::npos)
        << e.error().message;
    o.n_samples = 1000000, o.seqlen = 2048;
    e = check_calib_memory(o, 4096, uint64_t(64) << 30);
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message.find("calibration needs at least 31250.00 GiB"), std::string::npos)
        << e.error().message;
    EXPECT_NE(e.error().message.find("more than the 64.00 GiB of physical memory; lower --nsamples or --seqlen"),
              std::string::npos)
        << e.error().message;
    o.n_samples = 128;
    EXPECT_TRUE(check_calib_memory(o, 4096, uint64_t(64) << 30).ok()); // 4 GiB: the usual GPTQ setting fits
    // sample_windows' N x L no longer overflows either.
    o.n_samples = int64_t(1) << 40, o.seqlen = int64_t(1) << 40;
    auto w = sample_windows(std::vector<int32_t>(10, 1), o, "t.txt");
    ASSERT_FALSE(w.ok());
    EXPECT_NE(w.error().message.find("has 10 tokens, fewer than 1099511627776 samples x 1099511627776 tokens (lower"),
              std::string::npos)
        << w.error().message;
}

TEST(CalibData, RandomSamplesAreSeededUniformOverTheAllowedIds) {
    const std::vector<int32_t> allowed = {3, 7, 8, 20, 31};
    CalibOptions o;
    o.n_samples = 6, o.seqlen = 500, o.seed = 11;
    auto a = random_samples(allowed, o);
    ASSERT_TRUE(a.ok()) << a.error().message;
    EXPECT_EQ(*a, *random_samples(allowed, o));
    ASSERT_EQ(a->size(), 6u);
    std::map<int32_t, int64_t> counts;
    for (const auto& s : *a) {
        ASSERT_EQ(s.size(), 500u);
        for (int32_t t : s) counts[t] += 1;
    }
    ASSERT_EQ(counts.size(), allowed.size()); // every allowed id drawn, nothing else
    for (int32_t id : allowed) {
        EXPECT_GT(counts[id], 3000 / 5 - 120) << id; // 600 expected each, sd ~22
        EXPECT_LT(counts[id], 3000 / 5 + 120) << id;
    }
    o.seed = 12;
    EXPECT_NE(*random_samples(allowed, o), *a);
    EXPECT_EQ(random_samples({}, o).error().code, ErrorCode::kBadInput);
    o.n_samples = 0;
    EXPECT_EQ(random_samples(allowed, o).error().code, ErrorCode::kUsage);
}

TEST(CalibData, RandomVocabSkipsControlUnknownUserAndEndTokens) {
    format::VocabData v;
    v.model = "llama";
    const std::vector<std::pair<std::string, format::TokenType>> pieces = {
        {"<unk>", format::TokenType::kUnknown},   {"<s>", format::TokenType::kControl},
        {"</s>", format::TokenType::kControl},    {"a", format::TokenType::kNormal},
        {"b", format::TokenType::kNormal},        {"<0x41>", format::TokenType::kByte},
        {"<ctl>", format::TokenType::kControl},   {"<user>", format::TokenType::kUserDefined},
        {"<unused>", format::TokenType::kUnused}, {"c", format::TokenType::kNormal}};
    for (const auto& [text, type] : pieces) {
        v.tokens.push_back(text);
        v.scores.push_back(-1.0f);
        v.token_types.push_back(type);
    }
    v.unk_id = 0, v.bos_id = 1, v.eos_id = 9; // an EOS of normal type is still excluded
    auto tok = tokenizer::Tokenizer::create(v);
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    EXPECT_EQ(random_calib_vocab(&*tok, 10), (std::vector<int32_t>{3, 4, 5}));
    EXPECT_EQ(random_calib_vocab(&*tok, 4), (std::vector<int32_t>{3})); // the model's vocab bounds the ids
    EXPECT_EQ(random_calib_vocab(nullptr, 4), (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST_F(CalibSessionTest, RandomWithoutTokenizerDrawsFromTheWholeVocab) {
    CalibOptions o;
    o.source = "random", o.n_samples = 3, o.seqlen = 64, o.seed = 5;
    auto r = load_calib_samples(*session_, o);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->size(), 3u);
    for (const auto& s : *r) {
        ASSERT_EQ(s.size(), 64u);
        for (int32_t t : s) EXPECT_TRUE(t >= 0 && t < 32) << t;
    }
    EXPECT_EQ(*r, *random_samples(random_calib_vocab(nullptr, 32), o)); // the same seeded draw
    o.seqlen = 65;
    EXPECT_EQ(load_calib_samples(*session_, o).error().code, ErrorCode::kUsage);
}

TEST(CalibData, TokenizeOnlySessionsNeedNoKvCacheButTheModelContextStillBounds) {
    CalibOptions o;
    o.source = "random", o.seqlen = 48;
    EXPECT_EQ(calib_session_ctx(o), 1);
    o.source = "self";
    EXPECT_EQ(calib_session_ctx(o), 48);
    format::ModelConfig c;
    c.arch = "llama", c.vocab_size = 32, c.hidden_size = 32, c.intermediate_size = 64, c.n_layers = 1;
    c.n_heads = 2, c.n_kv_heads = 2, c.max_position_embeddings = 64;
    auto store = model::make_synthetic_model(c, *model::find_arch("llama"), model::SourceFormat::kHf, DType::kF32, 1);
    ASSERT_TRUE(store.ok());
    runtime::SessionOptions so;
    so.n_ctx = 1, so.n_threads = 1; // what calib_session_ctx gives for "random" / a file
    auto s = runtime::Session::from_store(*store, c, model::SourceFormat::kHf, so);
    ASSERT_TRUE(s.ok()) << s.error().message;
    o.source = "random", o.n_samples = 2;
    auto r = load_calib_samples(**s, o); // 48 tokens > the 1-position cache, within the 64-token model context
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ((*r)[0].size(), 48u);
    o.seqlen = 65;
    auto too_long = load_calib_samples(**s, o);
    ASSERT_FALSE(too_long.ok());
    EXPECT_NE(too_long.error().message.find("context (64)"), std::string::npos) << too_long.error().message;
}

TEST(LayerViewStore, ShowsOneLayerAsLayerZeroWithOverrides) {
    format::ModelConfig c;
    c.arch = "llama", c.vocab_size = 16, c.hidden_size = 16, c.intermediate_size = 32, c.n_layers = 3;
    c.n_heads = 2, c.n_kv_heads = 2, c.max_position_embeddings = 32;
    auto store = model::make_synthetic_model(c, *model::find_arch("llama"), model::SourceFormat::kHf, DType::kF32, 2);
    ASSERT_TRUE(store.ok());
    LayerViewStore view(*store, 2);
    EXPECT_EQ(view.find("model.layers.1.mlp.up_proj.weight"), nullptr);
    EXPECT_EQ(view.find("model.layers.2.mlp.up_proj.weight"), nullptr);
    ASSERT_NE(view.find("model.layers.0.mlp.up_proj.weight"), nullptr);
    ASSERT_NE(view.find("model.embed_tokens.weight"), nullptr);
    auto a = view.view("model.layers.0.mlp.up_proj.weight");
    auto b = (*store)->view("model.layers.2.mlp.up_proj.weight");
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->data, b->data); // a view into the same bytes, no copy
    std::vector<float> ones(32 * 16, 1.0f);
    ASSERT_TRUE(view.set_override("model.layers.2.mlp.up_proj.weight", ones).ok());
    auto o = view.view("model.layers.0.mlp.up_proj.weight");
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o->as<float>()[7], 1.0f);
    EXPECT_FALSE(view.set_override("model.layers.1.mlp.up_proj.weight", ones).ok());
    EXPECT_FALSE(view.set_override("model.layers.2.mlp.up_proj.weight", std::vector<float>(3)).ok());
}

} // namespace
} // namespace lowbit::pipeline
