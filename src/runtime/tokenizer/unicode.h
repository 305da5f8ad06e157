// SPDX-License-Identifier: MIT
// Unicode helpers for the tokenizers: UTF-8 <-> code points, category flags (generated tables), and GPT-2's
// byte <-> unicode mapping used by byte-level BPE vocabularies.
#pragma once

#include "core/error.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::tokenizer {

// Category flags of a code point (tools/gen_unicode_tables.py writes the table with these bit values).
enum CptFlag : uint8_t {
    kCptNumber = 1 << 0,     // \p{N}: Nd Nl No
    kCptLetter = 1 << 1,     // \p{L}: Lu Ll Lt Lm Lo
    kCptSeparator = 1 << 2,  // \p{Z}: Zs Zl Zp
    kCptMark = 1 << 3,       // \p{M}: Mn Mc Me
    kCptPunct = 1 << 4,      // \p{P}: Pc Pd Ps Pe Pi Pf Po
    kCptSymbol = 1 << 5,     // \p{S}: Sm Sc Sk So
    kCptControl = 1 << 6,    // \p{C} less unassigned: Cc Cf Co Cs
    kCptWhitespace = 1 << 7, // \s: the White_Space property
};

// Finer classes (a second generated table), for \p{Lu} ... \p{Lo}, \d (Nd), \w / \b (L M Nd Nl Pc) and
// \p{Han} (Script=Han).
enum CptSubFlag : uint16_t {
    kCptLu = 1 << 0,
    kCptLl = 1 << 1,
    kCptLt = 1 << 2,
    kCptLm = 1 << 3,
    kCptLo = 1 << 4,
    kCptNd = 1 << 5,
    kCptNl = 1 << 6,
    kCptPc = 1 << 7,
    kCptHan = 1 << 8,
};

// Flags of `cpt`; 0 for unassigned code points and for values past U+10FFFF. O(log n) over ~2k runs.
uint8_t cpt_flags(uint32_t cpt);
uint16_t cpt_sub_flags(uint32_t cpt); // CptSubFlag bits; O(log n) over ~4k runs
const char* unicode_version();        // version of the generated table, e.g. "14.0.0"

// Byte length of the UTF-8 sequence that `lead` starts, from its high bits only (1 for continuation bytes),
// as llama.cpp's unicode_len_utf8: SentencePiece splits text into "characters" this way.
inline size_t utf8_len(char lead) {
    static const uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLen[static_cast<uint8_t>(lead) >> 4];
}

// Decodes one well-formed code point at `text[*offset]` and advances `*offset`; returns false (offset
// unchanged) on a malformed, overlong, surrogate or truncated sequence.
bool utf8_decode_one(std::string_view text, size_t* offset, uint32_t* cpt);
// Code points of `text`; each malformed byte becomes U+FFFD (llama.cpp's unicode_cpts_from_utf8).
std::vector<uint32_t> utf8_to_cpts(std::string_view text);
void append_utf8(uint32_t cpt, std::string* out);
// Offset of the first byte that does not start a well-formed sequence, or npos when `text` is valid UTF-8.
size_t utf8_first_invalid(std::string_view text);
// The one rule for every text input (run/tokenize prompts and -f files, perplexity/imatrix text, gptq/awq --calib
// files): valid UTF-8, else kBadInput "<what> is not valid UTF-8: byte 0xXX at offset N (convert the text to UTF-8)".
Status check_utf8_text(std::string_view text, std::string_view what);
// Length of the longest prefix of `text` that ends on a sequence boundary when the remaining tail is a
// proper prefix of a well-formed sequence (more bytes may complete it); otherwise text.size().
size_t utf8_complete_prefix(std::string_view text);

// GPT-2 byte-level mapping: each byte is a printable code point (e.g. ' ' -> U+0120 'Ġ').
const std::string& byte_to_unicode_utf8(uint8_t byte);
// Inverse of the mapping; returns -1 for a code point that is not an encoded byte.
int unicode_to_byte(uint32_t cpt);
// UTF-8 bytes of `text` mapped byte by byte (what byte-level BPE merges operate on).
std::string byte_encode(std::string_view text);

namespace detail {
struct CptRun {
    uint32_t start;
    uint8_t flags;
};
struct CptSubRun {
    uint32_t start;
    uint16_t flags;
};
extern const CptRun kCptRuns[];
extern const size_t kCptRunCount;
extern const CptSubRun kCptSubRuns[];
extern const size_t kCptSubRunCount;
extern const char* const kUnicodeVersion;
} // namespace detail

} // namespace lowbit::tokenizer
