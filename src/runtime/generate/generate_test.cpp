// SPDX-License-Identifier: MIT
// Generation loop on a scripted bigram model and a hand-made SentencePiece vocabulary: stop reasons,
// streamed text (a UTF-8 character split over two byte tokens arrives whole), batching, timings.
#include "runtime/generate/generate.h"

#include <cmath>
#include <gtest/gtest.h>

namespace lowbit::runtime {
namespace {

using format::TokenType;
const std::string kSp = "\xe2\x96\x81"; // U+2581

// 0 <unk>, 1 <s>, 2 </s>, 3 "▁a", 4 "b", 5 "c", 6 "d", 7 <0xC3>, 8 <0xA9>
tokenizer::Tokenizer make_tokenizer() {
    format::VocabData v;
    v.model = "llama";
    const std::vector<std::string> pieces = {"<unk>", "<s>", "</s>", kSp + "a", "b", "c", "d", "<0xC3>", "<0xA9>"};
    for (const auto& p : pieces) {
        v.tokens.push_back(p);
        v.scores.push_back(0.0f);
        TokenType type = TokenType::kNormal;
        if (p == "<unk>") type = TokenType::kUnknown;
        if (p == "<s>" || p == "</s>") type = TokenType::kControl;
        if (p.rfind("<0x", 0) == 0) type = TokenType::kByte;
        v.token_types.push_back(type);
    }
    v.unk_id = 0, v.bos_id = 1, v.eos_id = 2;
    v.add_bos = true;
    auto t = tokenizer::Tokenizer::create(v);
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
    return std::move(t).value();
}

// Next token is a fixed function of the current one: <s> -> ▁a -> b -> <0xC3> -> <0xA9> -> c -> </s>.
class BigramModel : public LanguageModel {
  public:
    explicit BigramModel(int64_t n_ctx) : n_ctx_(n_ctx) {}
    int64_t n_vocab() const override { return 9; }
    int64_t n_ctx() const override { return n_ctx_; }
    int64_t n_past() const override { return n_past_; }
    void truncate(int64_t n_past) override { n_past_ = std::min(n_past_, n_past); }
    Status eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits) override {
        ++n_eval_calls;
        if (n_past_ + static_cast<int64_t>(tokens.size()) > n_ctx_) return make_error(ErrorCode::kUsage, "overflow");
        n_past_ += static_cast<int64_t>(tokens.size());
        logits.assign(9, 0.0f);
        static const int32_t next[9] = {2, 3, 2, 4, 7, 2, 2, 8, 5};
        logits[size_t(next[tokens.back()])] = 5.0f;
        logits[6] = 4.0f; // a strong runner-up for sampled runs
        return ok_status();
    }
    int n_eval_calls = 0;

  private:
    int64_t n_ctx_, n_past_ = 0;
};

SamplerOptions greedy() {
    SamplerOptions o;
    o.temp = 0.0f;
    return o;
}

TEST(Generate, GreedyStreamsWholeCharactersUntilEog) {
    const auto tok = make_tokenizer();
    BigramModel model(64);
    Sampler sampler(greedy());
    std::vector<std::string> pieces;
    const std::vector<int32_t> prompt = {1};
    auto r = generate(model, tok, prompt, sampler, {}, [&](std::string_view p) { pieces.emplace_back(p); });
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->tokens, (std::vector<int32_t>{3, 4, 7, 8, 5}));
    EXPECT_EQ(r->stop, StopReason::kEndOfGeneration);
    EXPECT_EQ(r->text, " ab\xc3\xa9"
                       "c");
    std::string joined;
    for (const auto& p : pieces) {
        EXPECT_NE(p, "\xc3"); // the half character is held back
        joined += p;
    }
    EXPECT_EQ(joined, r->text);
    EXPECT_EQ(r->timings.n_prompt_tokens, 1);
    EXPECT_EQ(r->timings.n_sampled, 6); // five tokens and the EOS
    EXPECT_EQ(r->timings.n_eval, 5);
}

TEST(Generate, StopsAtNPredictAndPromptOnly) {
    const auto tok = make_tokenizer();
    BigramModel model(64);
    Sampler sampler(greedy());
    const std::vector<int32_t> prompt = {1, 3};
    GenerateOptions o;
    o.n_predict = 2;
    auto r = generate(model, tok, prompt, sampler, o);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->tokens, (std::vector<int32_t>{4, 7}));
    EXPECT_EQ(r->stop, StopReason::kLength);
    EXPECT_EQ(r->text, "b\xef\xbf\xbd"); // <0xC3> alone is flushed as U+FFFD at the end
    EXPECT_EQ(model.n_past(), 3);        // prompt + the first generated token; the last is not evaluated

    o.n_predict = 0;
    r = generate(model, tok, prompt, sampler, o);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->tokens.empty());
    EXPECT_EQ(r->stop, StopReason::kPromptOnly);
    EXPECT_EQ(r->timings.n_prompt_tokens, 2);
    EXPECT_EQ(model.n_past(), 2); // cache was reset first
}

TEST(Generate, ContextFullAndPromptTooLong) {
    const auto tok = make_tokenizer();
    BigramModel model(3);
    Sampler sampler(greedy());
    const std::vector<int32_t> prompt = {1};
    auto r = generate(model, tok, prompt, sampler, {});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->stop, StopReason::kContextFull);
    EXPECT_EQ(r->tokens, (std::vector<int32_t>{3, 4, 7}));

    const std::vector<int32_t> long_prompt = {1, 3, 4, 7};
    r = generate(model, tok, long_prompt, sampler, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUsage);
    EXPECT_NE(r.error().message.find("4 tokens"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("only 3"), std::string::npos);
    EXPECT_EQ(generate(model, tok, std::vector<int32_t>{}, sampler, {}).error().code, ErrorCode::kUsage);
}

TEST(Generate, PrefillsInBatches) {
    const auto tok = make_tokenizer();
    BigramModel model(64);
    Sampler sampler(greedy());
    const std::vector<int32_t> prompt = {1, 6, 6, 6, 6, 3};
    GenerateOptions o;
    o.n_batch = 4;
    o.n_predict = 1;
    auto r = generate(model, tok, prompt, sampler, o);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(model.n_eval_calls, 2); // 4 + 2 prompt tokens; the one generated token is not evaluated
    EXPECT_EQ(r->tokens, (std::vector<int32_t>{4}));
}

TEST(Generate, SeededSamplingRepeatsAndTimingsFormat) {
    const auto tok = make_tokenizer();
    SamplerOptions so;
    so.temp = 1.5f;
    so.seed = 99;
    GenerateOptions o;
    o.n_predict = 12;
    auto run = [&] {
        BigramModel model(64);
        Sampler sampler(so);
        return generate(model, tok, std::vector<int32_t>{1}, sampler, o);
    };
    auto a = run(), b = run();
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->tokens, b->tokens);
    const std::string t = format_timings(a->timings, 12.5);
    EXPECT_NE(t.find("prompt eval time ="), std::string::npos);
    EXPECT_NE(t.find("/     1 tokens"), std::string::npos) << t;
    EXPECT_NE(t.find("tokens per second"), std::string::npos);
    EXPECT_NE(t.find("load time =      12.50 ms"), std::string::npos) << t;
}

TEST(Generate, TokenizePromptAddsBosPerVocabulary) {
    const auto tok = make_tokenizer();
    EXPECT_EQ(tokenize_prompt(tok, "ab", true).front(), 1);
    EXPECT_NE(tokenize_prompt(tok, "ab", false).front(), 1);
}

// A model whose logits turn non-finite after `bad_after` tokens of the cache (issue #15): generation stops with
// kBadInput naming the logits and the model's explanation, instead of sampling from NaN.
class NonFiniteModel : public BigramModel {
  public:
    NonFiniteModel(int64_t bad_after, float value, std::string why)
        : BigramModel(64), bad_after_(bad_after), value_(value), why_(std::move(why)) {}
    Status eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits) override {
        LOWBIT_TRY(BigramModel::eval(tokens, all_logits, logits));
        if (n_past() >= bad_after_) logits[4] = value_;
        return ok_status();
    }
    std::string explain_non_finite() const override { return why_; }

  private:
    int64_t bad_after_;
    float value_;
    std::string why_;
};

TEST(Generate, NonFiniteLogitsAreAnErrorNamingTheCause) {
    const auto tok = make_tokenizer();
    const std::vector<int32_t> prompt = {1};
    {
        NonFiniteModel model(1, NAN, "tensor 'w' holds nan at row 0, column 5");
        Sampler sampler(greedy());
        auto r = generate(model, tok, prompt, sampler, {});
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
        EXPECT_NE(r.error().message.find("the model's logits are not finite after the prompt (1 tokens) (token id 4 "
                                         "has logit nan), so no token can be sampled and nothing is generated: "
                                         "tensor 'w' holds nan at row 0, column 5"),
                  std::string::npos)
            << r.error().message;
    }
    {
        NonFiniteModel model(3, INFINITY, ""); // fine for the prompt and one step, then +inf; no explanation
        Sampler sampler(greedy());
        auto r = generate(model, tok, prompt, sampler, {});
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
        EXPECT_NE(r.error().message.find("not finite after generated token 2 (token id 4 has logit inf)"),
                  std::string::npos)
            << r.error().message;
        EXPECT_NE(r.error().message.find("every weight lowbit can check is finite, so the activations overflowed"),
                  std::string::npos)
            << r.error().message;
    }
    {
        NonFiniteModel model(1, NAN, "x"); // -n 0 evaluates the prompt only: nothing is sampled, nothing refused
        Sampler sampler(greedy());
        GenerateOptions o;
        o.n_predict = 0;
        EXPECT_TRUE(generate(model, tok, prompt, sampler, o).ok());
    }
}

} // namespace
} // namespace lowbit::runtime
