// SPDX-License-Identifier: MIT
// A small backtracking regex engine over code points for the pre-tokenizer patterns of byte-level BPE
// vocabularies (GPT-2, Llama-3, Qwen2, ...). It follows ECMAScript/PCRE priority semantics (leftmost match,
// first alternative that succeeds, greedy quantifiers) with Unicode categories, which is what llama.cpp's
// std::regex-on-collapsed-text fallback and its hand-written splitters both reproduce.
// Supported: literals, escapes \r \n \t \s \S \d (Nd) \w and escaped punctuation, categories
// \p{L|N|P|S|M|Z|C}, \p{Lu|Ll|Lt|Lm|Lo|Nd}, \p{Han}; classes [...] with ranges, negation and intersection
// [a&&[^b]]; groups (...) (matched as non-capturing), (?:...), (?i:...) (ASCII case folding); lookahead
// (?=...) and (?!...); the anchors $ and \b (Unicode \w: L M Nd Nl Pc); alternation; greedy quantifiers
// ? * + {m} {m,} {m,n} on atoms and groups, possessive ?+ *+ ++ on single-character atoms.
// Not supported (rejected at compile time): backreferences, lookbehind, lazy quantifiers, '.'.
#pragma once

#include "core/error.h"

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace lowbit::tokenizer {

class Regex {
  public:
    // Parses `pattern` (UTF-8). Errors (kUnsupported) name the pattern and the offending position.
    static Result<Regex> compile(std::string_view pattern);

    static constexpr size_t kNoMatch = static_cast<size_t>(-1);
    // Length of the highest-priority match that starts at `pos` (possibly 0), seeing only [begin, end)
    // (lookahead, $ and \b stop at the ends), or kNoMatch. `flags[i]` = cpt_flags(cpts[i]).
    size_t match_at(const uint32_t* cpts, const uint8_t* flags, size_t begin, size_t pos, size_t end) const;

    struct CharClass {
        bool negated = false;
        uint8_t flag_mask = 0;                             // CptFlag bits that are members
        uint16_t sub_mask = 0;                             // CptSubFlag bits that are members
        std::vector<std::pair<uint32_t, uint32_t>> ranges; // inclusive code point ranges that are members
        std::vector<CharClass> intersect;                  // [a&&b]: members must also match each of these
        bool matches(uint32_t cpt, uint8_t flags) const;
    };
    struct Node {
        enum class Kind { kClass, kGroup, kLookahead, kNegLookahead, kEnd, kWordBoundary } kind = Kind::kClass;
        CharClass cls;             // kClass
        uint32_t min = 1, max = 1; // kClass / kGroup repeat count
        bool possessive = false;   // kClass: the repeat never gives back
        size_t alt = 0;            // kGroup / kLookahead / kNegLookahead: index into alts_
    };
    using Seq = std::vector<Node>;
    using Alt = std::vector<Seq>;

  private:
    struct Cont;
    struct Input {
        const uint32_t* cpts;
        const uint8_t* flags;
        size_t begin, end;
    };
    bool match_cont(const Input& in, const Cont* k, size_t pos, size_t* end) const;
    bool repeat_group(const Input& in, const Node& node, uint32_t count, const Cont* next, size_t pos,
                      size_t* end) const;
    bool is_word(const Input& in, size_t pos) const;

    std::vector<Alt> alts_; // alts_[0] is the whole pattern; thread-safe to match from many threads
    friend class RegexParser;
};

// Splits every fragment of `offsets` (lengths in code points, summing to cpts.size()) at the matches of
// `regex`: each match and each unmatched gap becomes its own fragment (llama.cpp's unicode_regex_split_stl).
// An empty match only splits there (a lookahead-only pattern); the search then resumes one code point on.
std::vector<size_t> regex_split(const Regex& regex, const std::vector<uint32_t>& cpts,
                                const std::vector<uint8_t>& flags, const std::vector<size_t>& offsets);

} // namespace lowbit::tokenizer
