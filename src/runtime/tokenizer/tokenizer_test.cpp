// SPDX-License-Identifier: MIT
// Unit tests on hand-made vocabularies whose results are worked out by hand in the comments.
#include "format/pre_tokenizers.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/tokenizer_impl.h"
#include "runtime/tokenizer/unicode.h"

#include <algorithm>
#include <gtest/gtest.h>

namespace lowbit::tokenizer {
namespace {

using format::TokenType;
const std::string kSp = "\xe2\x96\x81"; // U+2581, SentencePiece's space

// SPM: ids 0 <unk>, 1 <s>, 2 </s>, then pieces with scores (higher merges first).
format::VocabData spm_vocab() {
    format::VocabData v;
    v.model = "llama";
    const std::vector<std::pair<std::string, float>> pieces = {
        {"<unk>", 0},  {"<s>", 0},      {"</s>", 0},   {kSp, -10},      {"a", -10},  {"b", -10},
        {"c", -10},    {"ab", -1},      {"bc", -0.5f}, {kSp + "a", -2}, {"abc", -3}, {"<0xC3>", 0},
        {"<0xA9>", 0}, {kSp + "b", -4}, {"<ctl>", 0},  {"<user>", 0},
    };
    for (const auto& [text, score] : pieces) {
        v.tokens.push_back(text);
        v.scores.push_back(score);
        TokenType type = TokenType::kNormal;
        if (text == "<unk>") type = TokenType::kUnknown;
        if (text == "<s>" || text == "</s>" || text == "<ctl>") type = TokenType::kControl;
        if (text.rfind("<0x", 0) == 0) type = TokenType::kByte;
        if (text == "<user>") type = TokenType::kUserDefined;
        v.token_types.push_back(type);
    }
    v.unk_id = 0, v.bos_id = 1, v.eos_id = 2;
    v.add_bos = true;
    return v;
}

Tokenizer make(const format::VocabData& v) {
    auto t = Tokenizer::create(v);
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
    return std::move(t).value();
}

TEST(SpmTokenizer, MergesHighestScoreFirst) {
    const Tokenizer t = make(spm_vocab());
    // "▁abc": pairs ▁a(-2) ab(-1) bc(-0.5): bc first -> ▁ a bc; then ▁a(-2) beats abc (-3): ▁a bc.
    EXPECT_EQ(t.encode("abc", false, false), (std::vector<int32_t>{9, 8}));
    EXPECT_EQ(t.encode("abc", true, false), (std::vector<int32_t>{1, 9, 8}));
    EXPECT_EQ(t.decode(t.encode("abc", true, false), false), "abc");
    EXPECT_EQ(t.decode(t.encode("abc", true, false), true), "<s>abc");
    EXPECT_EQ(t.decode(t.encode(" abc", false, false)), " abc");
    // " b": "▁▁b": ▁b (-4) is the only pair -> ▁ ▁b.
    EXPECT_EQ(t.encode(" b", false, false), (std::vector<int32_t>{3, 13}));
}

TEST(SpmTokenizer, ByteFallbackAndUnknown) {
    const Tokenizer t = make(spm_vocab());
    // "é" = C3 A9: not a piece, so its bytes; "ç" = C3 A7: <0xA7> is missing -> unk.
    EXPECT_EQ(t.encode("\xc3\xa9", false, false), (std::vector<int32_t>{3, 11, 12}));
    EXPECT_EQ(t.encode("\xc3\xa7", false, false), (std::vector<int32_t>{3, 11, 0}));
    EXPECT_EQ(t.decode({3, 11, 12}), "\xc3\xa9");
    EXPECT_EQ(t.encode("", true, false), (std::vector<int32_t>{1}));
    EXPECT_TRUE(t.encode("", false, false).empty());
}

TEST(SpmTokenizer, SpecialTokensSplitOut) {
    const Tokenizer t = make(spm_vocab());
    // parse_special: "<ctl>" is one token and the text after it gets a space prefix again.
    EXPECT_EQ(t.encode("a<ctl>a", false, true), (std::vector<int32_t>{9, 14, 9}));
    // Without parse_special the control text is plain text; the user-defined token is always recognized.
    const std::vector<int32_t> plain = t.encode("<ctl>", false, false);
    EXPECT_TRUE(std::find(plain.begin(), plain.end(), 14) == plain.end());
    EXPECT_EQ(t.encode("<user>", false, false), (std::vector<int32_t>{15}));
    EXPECT_EQ(t.token_to_piece(14, false), "");
    EXPECT_EQ(t.token_to_piece(14, true), "<ctl>");
}

// Byte-level BPE: ids 0..255 are the 256 byte symbols (in byte order), then merges' results.
format::VocabData bpe_vocab(const std::string& pre) {
    format::VocabData v;
    v.model = "gpt2";
    v.pre = pre;
    for (int b = 0; b < 256; ++b) v.tokens.push_back(byte_to_unicode_utf8(static_cast<uint8_t>(b)));
    const std::string sp = byte_to_unicode_utf8(' '); // "Ġ"
    v.merges = {"l l", "h e", "he ll", "hell o", sp + " w", "o r", sp + "w or", sp + "wor ld", "l d"};
    for (const std::string& m : v.merges) {
        const size_t pos = m.find(' ', 1);
        v.tokens.push_back(m.substr(0, pos) + m.substr(pos + 1)); // ids 256..264 in merge order
    }
    v.tokens.push_back("<|eot|>");
    v.tokens.push_back("<|e");
    v.token_types.assign(v.tokens.size(), TokenType::kNormal);
    v.token_types[265] = TokenType::kControl;
    v.token_types[266] = TokenType::kControl;
    v.eos_id = 265;
    return v;
}

TEST(BpeTokenizer, MergesLowestRankFirst) {
    const Tokenizer t = make(bpe_vocab("gpt-2"));
    // "hello" -> ll(0) he(1) -> he ll(2) -> hell o(3) = 259; "hell" stops at 258; "helo" has only he.
    EXPECT_EQ(t.encode("hello", false, false), (std::vector<int32_t>{259}));
    EXPECT_EQ(t.encode("hell", false, false), (std::vector<int32_t>{258}));
    EXPECT_EQ(t.encode("helo", false, false), (std::vector<int32_t>{257, 'l', 'o'}));
    // " world": Ġw(4), or(5), ld(8) -> Ġw or ld -> Ġwor(6) -> Ġworld(7).
    EXPECT_EQ(t.encode(" world", false, false), (std::vector<int32_t>{263}));
    EXPECT_EQ(t.decode(t.encode("hello world", false, false)), "hello world");
    // Non-ASCII goes through the byte mapping: "é" = C3 A9 -> two byte symbols.
    EXPECT_EQ(t.encode("\xc3\xa9", false, false), (std::vector<int32_t>{0xC3, 0xA9}));
    EXPECT_EQ(t.token_to_piece(0xC3) + t.token_to_piece(0xA9), "\xc3\xa9");
}

TEST(BpeTokenizer, SpecialTokensLongestFirst) {
    const Tokenizer t = make(bpe_vocab("gpt-2"));
    EXPECT_EQ(t.encode("a<|eot|>", false, true), (std::vector<int32_t>{'a', 265}));
    EXPECT_EQ(t.encode("<|e<|eot|>", false, true), (std::vector<int32_t>{266, 265}));
    EXPECT_EQ(t.encode("<|eot|>", false, false).size(), 7u); // 7 single bytes: "<", "|", "e", ...
    EXPECT_TRUE(t.is_eog(265));
    EXPECT_FALSE(t.is_eog(266));
}

TEST(BpeTokenizer, PreTokenizerWords) {
    const format::PreTokenizerRow* row = format::find_pre_tokenizer("llama-bpe");
    ASSERT_NE(row, nullptr);
    EXPECT_TRUE(row->ignore_merges);
    std::vector<Regex> res;
    for (const auto& p : row->regexes) res.push_back(std::move(Regex::compile(p).value()));
    const std::string sp = byte_to_unicode_utf8(' '), nl = byte_to_unicode_utf8('\n');
    // Contractions, 3-digit groups (the space before digits stands alone), a space kept before punctuation, whitespace
    // before a word split off.
    EXPECT_EQ(bpe_pre_tokenize(res, "I'M 12345 ok!!  go\n\nx"),
              (std::vector<std::string>{"I", "'M", sp, "123", "45", sp + "ok", "!!", sp, sp + "go", nl + nl, "x"}));
}

TEST(Detokenizer, HoldsBackSplitMultibyteCharacters) {
    const Tokenizer t = make(spm_vocab());
    Detokenizer d(t);
    EXPECT_EQ(d.push(9), " a");
    EXPECT_EQ(d.push(11), ""); // 0xC3: first byte of "é"
    EXPECT_EQ(d.push(12), "\xc3\xa9");
    EXPECT_EQ(d.push(11), "");
    EXPECT_EQ(d.flush(), "\xef\xbf\xbd");  // incomplete at the end -> U+FFFD
    EXPECT_EQ(d.push(12), "\xef\xbf\xbd"); // a lone continuation byte can never complete
    EXPECT_EQ(d.push(1), "<s>");
    Detokenizer quiet(t, /*special=*/false);
    EXPECT_EQ(quiet.push(1), "");
}

TEST(Detokenizer, FourByteCharacterAcrossByteTokens) {
    const Tokenizer t = make(bpe_vocab("gpt-2"));
    Detokenizer d(t);
    const std::string emoji = "\xf0\x9f\x98\x80"; // U+1F600
    std::string out;
    for (size_t i = 0; i < emoji.size(); ++i) {
        const std::string got = d.push(static_cast<uint8_t>(emoji[i]));
        if (i + 1 < emoji.size()) {
            EXPECT_EQ(got, "") << i;
        }
        out += got;
    }
    EXPECT_EQ(out, emoji);
    EXPECT_EQ(sanitize_utf8("a\xff"
                            "b"),
              "a\xef\xbf\xbd"
              "b");
}

TEST(TokenizerCreate, RejectsBadVocabularies) {
    format::VocabData v = bpe_vocab("gpt-2");
    v.pre = "no-such-pre";
    auto r = Tokenizer::create(v);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(r.error().message.find("no-such-pre"), std::string::npos);

    v = bpe_vocab("gpt-2");
    v.merges.push_back("nospace");
    r = Tokenizer::create(v);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);

    v = spm_vocab();
    v.scores.pop_back();
    EXPECT_FALSE(Tokenizer::create(v).ok());
    v = spm_vocab();
    v.bos_id = 1000;
    r = Tokenizer::create(v);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("BOS id 1000"), std::string::npos);
    v = spm_vocab();
    v.model = "bert";
    EXPECT_EQ(Tokenizer::create(v).error().code, ErrorCode::kUnsupported);
    v.model = "llama";
    v.tokens.clear(), v.scores.clear(), v.token_types.clear();
    EXPECT_FALSE(Tokenizer::create(v).ok());
}

} // namespace
} // namespace lowbit::tokenizer
