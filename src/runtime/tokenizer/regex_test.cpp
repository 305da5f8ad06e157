// SPDX-License-Identifier: MIT
// Regex engine and Unicode helper tests: priorities, lookahead at fragment ends, categories, UTF-8 edges.
#include "runtime/tokenizer/regex.h"
#include "runtime/tokenizer/unicode.h"

#include <gtest/gtest.h>

namespace lowbit::tokenizer {
namespace {

// Splits `text` with `pattern` and returns the pieces as UTF-8.
std::vector<std::string> split(const std::string& pattern, const std::string& text) {
    auto re = Regex::compile(pattern);
    EXPECT_TRUE(re.ok()) << (re.ok() ? "" : re.error().message);
    const std::vector<uint32_t> cpts = utf8_to_cpts(text);
    std::vector<uint8_t> flags;
    for (uint32_t c : cpts) flags.push_back(cpt_flags(c));
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t n : regex_split(*re, cpts, flags, {cpts.size()})) {
        std::string piece;
        for (size_t i = start; i < start + n; ++i) append_utf8(cpts[i], &piece);
        out.push_back(piece);
        start += n;
    }
    return out;
}

using V = std::vector<std::string>;
const char* kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

TEST(Regex, Gpt2Pattern) {
    EXPECT_EQ(split(kGpt2, "Hello world's 42!!"), (V{"Hello", " world", "'s", " 42", "!!"}));
    // \s+(?!\S) leaves the last space to the next word; at the end all of it matches.
    EXPECT_EQ(split(kGpt2, "a   b  "), (V{"a", "  ", " b", "  "}));
    // Non-ASCII letters (Greek, CJK) and a non-breaking space as whitespace.
    EXPECT_EQ(split(kGpt2, "αβ 中文\xc2\xa0x"), (V{"αβ", " 中文", "\xc2\xa0", "x"}));
}

TEST(Regex, AlternativesQuantifiersAndCase) {
    EXPECT_EQ(split("\\p{N}{1,3}", "1234567"), (V{"123", "456", "7"}));
    EXPECT_EQ(split("(?i:'s|'ll)", "'S'Ll'x"), (V{"'S", "'Ll", "'x"}));
    EXPECT_EQ(split("\\s+$", "a  b  "), (V{"a  b", "  "}));
    EXPECT_EQ(split("[一-龥]+", "ab中文cd"), (V{"ab", "中文", "cd"}));
    EXPECT_EQ(split("[\\p{P}\\$\\+<=>\\^~\\|`]+", "a+b=$c"), (V{"a", "+", "b", "=$", "c"}));
}

TEST(Regex, QuantifiedAndCapturingGroups) {
    EXPECT_EQ(split("(?:ab)+", "ababxab"), (V{"abab", "x", "ab"}));
    EXPECT_EQ(split("(?:ab){2}", "ababab"), (V{"abab", "ab"}));
    // Chameleon's image-token pattern: capturing groups, a quantified alternation.
    EXPECT_EQ(split("(IMGIMG)((A|B|C){1,4})Z", "xIMGIMGABZyIMGIMGABCAZIMGIMGABCABZ"),
              (V{"x", "IMGIMGABZ", "y", "IMGIMGABCAZ", "IMGIMGABCABZ"})); // 5 letters: no match
    // Nested quantified groups (EXAONE MoE): letter runs joined by single spaces.
    EXPECT_EQ(split("(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+", "ab cd  e\u0301f 1"),
              (V{"ab cd", "  ", "e\u0301f", " 1"}));
    // An iteration that matches empty ends the loop instead of spinning.
    EXPECT_EQ(split("(?:a*)*b", "aab"), (V{"aab"}));
}

TEST(Regex, LookaheadWordBoundaryAndEmptyMatches) {
    // Digit runs grouped by 3 from the right (AFMoE's digits).
    EXPECT_EQ(split("\\p{N}{1,3}(?=(?:\\p{N}{3})*(?!\\p{N}))", "1234567 12"), (V{"1", "234", "567", " ", "12"}));
    // Tiny Aya: the same up to a word boundary; digits glued to letters have none, so they stay unsplit.
    EXPECT_EQ(split("\\d{1,3}(?=(?:\\d{3})*\\b)", "1234567 1234abc 12,345"),
              (V{"1", "234", "567", " 1234abc ", "12", ",", "345"}));
    // \b sees only the fragment: at its ends there is no word character outside.
    EXPECT_EQ(split("\\b", "ab"), (V{"ab"}));
    // SuperBPE: an empty match (lookahead only) splits without consuming.
    EXPECT_EQ(split("(?=(\\d{3})+(?!\\d))", "1234567"), (V{"1", "234", "567"}));
    EXPECT_EQ(split("(?=(\\d{3})+(?!\\d))", "12"), (V{"12"}));
}

TEST(Regex, LetterCasesHanAndIntersection) {
    EXPECT_EQ(split("[\\p{Lu}\\p{Lt}]+", "abCDéÉǅf"), (V{"ab", "CD", "é", "Éǅ", "f"}));
    EXPECT_EQ(split("\\p{Han}+", "ab中文cdかな"), (V{"ab", "中文", "cdかな"}));
    EXPECT_EQ(split("[\\p{L}&&[^\\p{Han}]]+", "ab中文cdかな"), (V{"ab", "中文", "cdかな"}));
    EXPECT_EQ(split("\\d+", "a12٣٤²b"), (V{"a", "12٣٤", "²b"}));
    EXPECT_EQ(split("\\w+", "a_b-c"), (V{"a_b", "-", "c"}));
    // Oniguruma's \w also has ² ½ and circled letters, but not other No/So characters; \b follows.
    EXPECT_EQ(split("\\w+", "x²½ⓐ⅓☃"), (V{"x²½ⓐ", "⅓☃"}));
    EXPECT_EQ(split("\\d\\b", "  ١½١ ٢"), (V{"  ١½", "١", " ", "٢"}));
}

TEST(Regex, PossessiveQuantifiers) {
    // Greedy [a-z]* gives back the 'z'; possessive keeps it, so the first alternative fails.
    EXPECT_EQ(split("x[a-z]*z|x", "xabz"), (V{"xabz"}));
    EXPECT_EQ(split("x[a-z]*+z|x", "xabz"), (V{"x", "abz"}));
}

TEST(Regex, RejectsUnsupportedSyntax) {
    for (const char* bad :
         {"a.b", "[a", "(?:a", "a{3,1}", "*a", "a+?", "(?<=a)b", "(?:a)++", "\\p{Xx}", "(?=a)*", "[\\b]", "(?P<n>a)"}) {
        auto re = Regex::compile(bad);
        EXPECT_FALSE(re.ok()) << bad;
        if (!re.ok()) {
            EXPECT_EQ(re.error().code, ErrorCode::kUnsupported) << bad;
        }
    }
}

TEST(Unicode, SubCategories) {
    EXPECT_EQ(cpt_sub_flags('A'), kCptLu);
    EXPECT_EQ(cpt_sub_flags(0xE9), kCptLl);             // é
    EXPECT_EQ(cpt_sub_flags(0x1C5), kCptLt);            // ǅ
    EXPECT_EQ(cpt_sub_flags(0x4E2D), kCptLo | kCptHan); // 中
    EXPECT_EQ(cpt_sub_flags(0x3042), kCptLo);           // あ: not Han
    EXPECT_EQ(cpt_sub_flags(0x3005), kCptLm | kCptHan); // 々
    EXPECT_EQ(cpt_sub_flags(0x663), kCptNd);            // ٣
    EXPECT_EQ(cpt_sub_flags(0x2160), kCptNl);           // Ⅰ
    EXPECT_EQ(cpt_sub_flags(0xB2), 0);                  // ²: No
    EXPECT_EQ(cpt_sub_flags('_'), kCptPc);
}

TEST(Unicode, CategoriesAndWhitespace) {
    EXPECT_EQ(cpt_flags('a'), kCptLetter);
    EXPECT_EQ(cpt_flags('7'), kCptNumber);
    EXPECT_EQ(cpt_flags('!'), kCptPunct);
    EXPECT_EQ(cpt_flags('+'), kCptSymbol);
    EXPECT_EQ(cpt_flags(' '), kCptSeparator | kCptWhitespace);
    EXPECT_EQ(cpt_flags('\n'), kCptControl | kCptWhitespace);
    EXPECT_EQ(cpt_flags(0x4E2D), kCptLetter);  // 中
    EXPECT_EQ(cpt_flags(0x0663), kCptNumber);  // Arabic-Indic three
    EXPECT_EQ(cpt_flags(0x0301), kCptMark);    // combining acute
    EXPECT_EQ(cpt_flags(0x1F600), kCptSymbol); // emoji
    EXPECT_EQ(cpt_flags(0x3000), kCptSeparator | kCptWhitespace);
    EXPECT_EQ(cpt_flags(0x1C), kCptControl); // not White_Space, unlike Python's str.isspace
    EXPECT_EQ(cpt_flags(0x10FFFF), 0);       // unassigned
    EXPECT_EQ(cpt_flags(0x110000), 0);
}

TEST(Unicode, Utf8Edges) {
    EXPECT_EQ(utf8_to_cpts("a\xff"
                           "b"),
              (std::vector<uint32_t>{'a', 0xFFFD, 'b'}));
    EXPECT_EQ(utf8_to_cpts("\xc0\xaf"), (std::vector<uint32_t>{0xFFFD, 0xFFFD})); // overlong
    EXPECT_EQ(utf8_to_cpts("\xed\xa0\x80").size(), 3u);                           // surrogate
    EXPECT_EQ(utf8_first_invalid("ok\xe2\x82"), 2u);
    EXPECT_EQ(utf8_first_invalid("ok \xe2\x82\xac"), std::string::npos);
    EXPECT_EQ(utf8_complete_prefix("a\xe2\x82"), 1u); // € missing its last byte
    EXPECT_EQ(utf8_complete_prefix("a\xf0\x9f"), 1u);
    EXPECT_EQ(utf8_complete_prefix("a\xe0\x80"), 3u); // E0 80 can never be valid: not held back
    EXPECT_EQ(utf8_complete_prefix("a\xe2\x82\xac"), 4u);
    EXPECT_EQ(byte_to_unicode_utf8(' '), "\xc4\xa0"); // Ġ
    EXPECT_EQ(unicode_to_byte(0x120), ' ');
    for (int b = 0; b < 256; ++b) {
        const std::vector<uint32_t> c = utf8_to_cpts(byte_to_unicode_utf8(static_cast<uint8_t>(b)));
        ASSERT_EQ(c.size(), 1u);
        EXPECT_EQ(unicode_to_byte(c[0]), b);
    }
}

} // namespace
} // namespace lowbit::tokenizer
