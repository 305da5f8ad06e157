// SPDX-License-Identifier: MIT
// A small backtracking regex engine over code points for the pre-tokenizer patterns of byte-level BPE
// vocabularies (GPT-2, Llama-3, Qwen2, ...). It follows ECMAScript/PCRE priority semantics (leftmost match,
// first alternative that succeeds, greedy quantifiers) with Unicode categories, which is what llama.cpp's
// std::regex-on-collapsed-text fallback and its hand-written splitters both reproduce.
// Supported: literals, escapes \r \n \t \s \S \p{L|N|P|S|M|Z|C} and escaped punctuation, classes [...] with
// ranges and negation, groups (?:...), (?i:...) (ASCII case folding), negative lookahead (?!...), the end
// anchor $, alternation, and quantifiers ? * + {m} {m,} {m,n} on single-character atoms.
// Not supported (rejected at compile time): backreferences, capturing groups, quantified groups.
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

    // Length of the highest-priority match that starts at `pos`, seeing only [pos, end) (lookahead and $
    // stop at `end`), or 0 when none. `flags[i]` = cpt_flags(cpts[i]). None of our patterns match empty.
    size_t match_at(const uint32_t* cpts, const uint8_t* flags, size_t pos, size_t end) const;

    struct CharClass {
        bool negated = false;
        uint8_t flag_mask = 0;                             // CptFlag bits that are members
        std::vector<std::pair<uint32_t, uint32_t>> ranges; // inclusive code point ranges that are members
        bool matches(uint32_t cpt, uint8_t flags) const;
    };
    struct Node {
        enum class Kind { kClass, kGroup, kNegLookahead, kEnd } kind = Kind::kClass;
        CharClass cls;             // kClass
        uint32_t min = 1, max = 1; // kClass repeat count
        size_t alt = 0;            // kGroup / kNegLookahead: index into alts_
    };
    using Seq = std::vector<Node>;
    using Alt = std::vector<Seq>;

  private:
    struct Cont;
    struct Input {
        const uint32_t* cpts;
        const uint8_t* flags;
        size_t end;
    };
    bool match_cont(const Input& in, const Cont* k, size_t pos, size_t* end) const;

    std::vector<Alt> alts_; // alts_[0] is the whole pattern; thread-safe to match from many threads
    friend class RegexParser;
};

// Splits every fragment of `offsets` (lengths in code points, summing to cpts.size()) at the matches of
// `regex`: each match and each unmatched gap becomes its own fragment (llama.cpp's unicode_regex_split_stl).
std::vector<size_t> regex_split(const Regex& regex, const std::vector<uint32_t>& cpts,
                                const std::vector<uint8_t>& flags, const std::vector<size_t>& offsets);

} // namespace lowbit::tokenizer
