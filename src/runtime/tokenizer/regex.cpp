// SPDX-License-Identifier: MIT
// Regex: parser (pattern -> alternatives of node sequences) and a continuation-passing backtracking matcher.
#include "runtime/tokenizer/regex.h"

#include "runtime/tokenizer/unicode.h"

#include <cctype>
#include <iterator>
#include <string>

namespace lowbit::tokenizer {

bool Regex::CharClass::matches(uint32_t cpt, uint8_t flags) const {
    bool in = (flags & flag_mask) != 0 || (sub_mask != 0 && (cpt_sub_flags(cpt) & sub_mask) != 0);
    for (size_t i = 0; !in && i < ranges.size(); ++i) in = cpt >= ranges[i].first && cpt <= ranges[i].second;
    for (size_t i = 0; in && i < intersect.size(); ++i) in = intersect[i].matches(cpt, flags);
    return in != negated;
}

namespace {
// \w (and so \b) as Oniguruma - the engine of Hugging Face tokenizers - has it: letters, marks, Nd, Nl and
// connector punctuation, plus the Latin-1 digits-like No characters and the Other_Alphabetic So letters
// (circled/squared/negative letters), measured against `tokenizers` over every code point.
constexpr uint8_t kWordFlags = kCptLetter | kCptMark;
constexpr uint16_t kWordSubFlags = kCptNd | kCptNl | kCptPc;
constexpr std::pair<uint32_t, uint32_t> kWordExtraRanges[] = {{0xB2, 0xB3},      {0xB9, 0xB9},       {0xBC, 0xBE},
                                                              {0x24B6, 0x24E9},  {0x1F130, 0x1F149}, {0x1F150, 0x1F169},
                                                              {0x1F170, 0x1F189}};
bool is_word_cpt(uint32_t cpt, uint8_t flags) {
    if ((flags & kWordFlags) != 0 || (cpt_sub_flags(cpt) & kWordSubFlags) != 0) return true;
    for (const auto& [lo, hi] : kWordExtraRanges)
        if (cpt >= lo && cpt <= hi) return true;
    return false;
}
} // namespace

class RegexParser {
  public:
    explicit RegexParser(std::string_view pattern) : pattern_(pattern), p_(utf8_to_cpts(pattern)) {}

    Result<Regex> parse() {
        Regex re;
        re.alts_.emplace_back();
        LOWBIT_TRY(parse_alt(re, 0));
        if (i_ != p_.size()) return fail("unbalanced ')'");
        return re;
    }

  private:
    Error fail(const std::string& what) const {
        return make_error(ErrorCode::kUnsupported, "pre-tokenizer regex '" + std::string(pattern_) + "': " + what +
                                                       " at code point " + std::to_string(i_));
    }
    bool at_end() const { return i_ >= p_.size(); }
    uint32_t peek(size_t ahead = 0) const { return i_ + ahead < p_.size() ? p_[i_ + ahead] : 0; }

    // alt := seq ('|' seq)*, written into re.alts_[index].
    Status parse_alt(Regex& re, size_t index) {
        while (true) {
            Regex::Seq seq;
            while (!at_end() && peek() != '|' && peek() != ')') {
                LOWBIT_ASSIGN_OR_RETURN(Regex::Node node, parse_item(re));
                seq.push_back(std::move(node));
            }
            re.alts_[index].push_back(std::move(seq));
            if (at_end() || peek() == ')') return ok_status();
            ++i_; // '|'
        }
    }

    Result<Regex::Node> parse_item(Regex& re) {
        Regex::Node node;
        const uint32_t c = peek();
        if (c == '(') {
            ++i_;
            bool saved_icase = icase_;
            if (peek() == '?' && peek(1) == ':') {
                node.kind = Regex::Node::Kind::kGroup, i_ += 2;
            } else if (peek() == '?' && peek(1) == '=') {
                node.kind = Regex::Node::Kind::kLookahead, i_ += 2;
            } else if (peek() == '?' && peek(1) == '!') {
                node.kind = Regex::Node::Kind::kNegLookahead, i_ += 2;
            } else if (peek() == '?' && peek(1) == 'i' && peek(2) == ':') {
                node.kind = Regex::Node::Kind::kGroup, i_ += 3, icase_ = true;
            } else if (peek() == '?') {
                return fail("only (...), (?:...), (?i:...), (?=...) and (?!...) groups are supported");
            } else {
                node.kind = Regex::Node::Kind::kGroup; // capturing group: nothing refers back to it
            }
            node.alt = re.alts_.size();
            re.alts_.emplace_back();
            LOWBIT_TRY(parse_alt(re, node.alt));
            if (peek() != ')') return fail("missing ')'");
            ++i_;
            icase_ = saved_icase;
        } else if (c == '$') {
            node.kind = Regex::Node::Kind::kEnd, ++i_;
        } else if (c == '\\' && peek(1) == 'b') {
            node.kind = Regex::Node::Kind::kWordBoundary, i_ += 2;
        } else if (c == '[') {
            ++i_;
            LOWBIT_TRY(parse_class(node.cls));
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            return fail("quantifier without an atom");
        } else {
            LOWBIT_TRY(parse_atom(node.cls, /*in_class=*/false));
        }
        if (!at_end() && (peek() == '?' || peek() == '*' || peek() == '+' || peek() == '{')) {
            if (node.kind != Regex::Node::Kind::kClass && node.kind != Regex::Node::Kind::kGroup)
                return fail("quantified lookaheads and anchors are not supported");
            LOWBIT_TRY(parse_quantifier(node));
        }
        return node;
    }

    Status parse_quantifier(Regex::Node& node) {
        const uint32_t q = p_[i_++];
        if (q == '?') node.min = 0, node.max = 1;
        if (q == '*') node.min = 0, node.max = UINT32_MAX;
        if (q == '+') node.min = 1, node.max = UINT32_MAX;
        if (q == '{') {
            node.min = parse_number();
            node.max = node.min;
            if (peek() == ',') {
                ++i_;
                node.max = peek() == '}' ? UINT32_MAX : parse_number();
            }
            if (peek() != '}' || node.max < node.min) return fail("bad {m,n} quantifier");
            ++i_;
        }
        if (peek() == '+' && node.kind == Regex::Node::Kind::kClass) {
            node.possessive = true, ++i_;
        } else if (peek() == '?' || peek() == '+') {
            return fail("lazy quantifiers and possessive groups are not supported");
        }
        return ok_status();
    }

    uint32_t parse_number() {
        uint32_t v = 0;
        while (peek() >= '0' && peek() <= '9') v = v * 10 + (p_[i_++] - '0');
        return v;
    }

    // [...] after the '['.
    Status parse_class(Regex::CharClass& cls) {
        if (peek() == '^') cls.negated = true, ++i_;
        while (!at_end() && peek() != ']') {
            if (peek() == '&' && peek(1) == '&') { // intersection with the rest: [a&&[^b]] or [a&&b]
                i_ += 2;
                Regex::CharClass rest;
                if (peek() == '[') {
                    ++i_;
                    LOWBIT_TRY(parse_class(rest));
                    if (peek() != ']') return fail("expected ']' after a nested class");
                } else {
                    LOWBIT_TRY(parse_class_items(rest));
                }
                cls.intersect.push_back(std::move(rest));
                continue;
            }
            LOWBIT_TRY(parse_class_item(cls));
        }
        if (at_end()) return fail("missing ']'");
        ++i_;
        return ok_status();
    }

    // Items up to (not including) the closing ']'.
    Status parse_class_items(Regex::CharClass& cls) {
        while (!at_end() && peek() != ']') LOWBIT_TRY(parse_class_item(cls));
        return ok_status();
    }

    Status parse_class_item(Regex::CharClass& cls) {
        {
            Regex::CharClass item;
            const size_t start = i_;
            LOWBIT_TRY(parse_atom(item, /*in_class=*/true));
            if (item.negated) {
                i_ = start;
                return fail("negated escapes inside [...] are not supported");
            }
            cls.flag_mask |= item.flag_mask;
            if (peek() == '-' && peek(1) != ']' && item.ranges.size() == 1 && item.flag_mask == 0 &&
                item.sub_mask == 0) {
                ++i_;
                Regex::CharClass hi;
                LOWBIT_TRY(parse_atom(hi, true));
                if (hi.ranges.size() != 1 || hi.flag_mask || hi.sub_mask) return fail("bad range in [...]");
                cls.ranges.emplace_back(item.ranges[0].first, hi.ranges[0].first);
            } else {
                cls.ranges.insert(cls.ranges.end(), item.ranges.begin(), item.ranges.end());
            }
            cls.sub_mask |= item.sub_mask;
        }
        return ok_status();
    }

    // One literal, escape or category into `cls` (as a member set).
    Status parse_atom(Regex::CharClass& cls, bool in_class) {
        uint32_t c = p_[i_++];
        if (c == '\\') {
            if (at_end()) return fail("trailing '\\'");
            c = p_[i_++];
            if (c == 'p') {
                if (peek() != '{') return fail("expected \\p{X}");
                std::string name;
                for (++i_; !at_end() && peek() != '}' && name.size() < 8; ++i_)
                    name.push_back(static_cast<char>(p_[i_]));
                if (peek() != '}') return fail("expected \\p{X}");
                ++i_;
                static const struct {
                    const char* name;
                    uint8_t flags;
                    uint16_t sub;
                } kCategories[] = {{"L", kCptLetter, 0},  {"N", kCptNumber, 0}, {"P", kCptPunct, 0},
                                   {"S", kCptSymbol, 0},  {"M", kCptMark, 0},   {"Z", kCptSeparator, 0},
                                   {"C", kCptControl, 0}, {"Lu", 0, kCptLu},    {"Ll", 0, kCptLl},
                                   {"Lt", 0, kCptLt},     {"Lm", 0, kCptLm},    {"Lo", 0, kCptLo},
                                   {"Nd", 0, kCptNd},     {"Han", 0, kCptHan}};
                for (const auto& cat : kCategories) {
                    if (name != cat.name) continue;
                    cls.flag_mask |= cat.flags;
                    cls.sub_mask |= cat.sub;
                    return ok_status();
                }
                return fail("unknown category \\p{" + name + "}");
            }
            if (c == 'd') {
                cls.sub_mask |= kCptNd;
                return ok_status();
            }
            if (c == 'w') {
                cls.flag_mask |= kWordFlags;
                cls.sub_mask |= kWordSubFlags;
                cls.ranges.insert(cls.ranges.end(), std::begin(kWordExtraRanges), std::end(kWordExtraRanges));
                return ok_status();
            }
            if (c == 's' || c == 'S') {
                cls.flag_mask |= kCptWhitespace;
                cls.negated = c == 'S';
                return ok_status();
            }
            if (c == 'r')
                c = '\r';
            else if (c == 'n')
                c = '\n';
            else if (c == 't')
                c = '\t';
            else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                return fail("unsupported escape \\" + std::string(1, static_cast<char>(c)));
        } else if (!in_class && c == '.') {
            return fail("'.' is not supported");
        }
        cls.ranges.emplace_back(c, c);
        if (icase_ && c < 128 && std::isalpha(static_cast<int>(c))) {
            const uint32_t other = std::isupper(static_cast<int>(c)) ? c + 32 : c - 32;
            cls.ranges.emplace_back(other, other);
        }
        return ok_status();
    }

    std::string_view pattern_;
    std::vector<uint32_t> p_;
    size_t i_ = 0;
    bool icase_ = false;
};

Result<Regex> Regex::compile(std::string_view pattern) {
    return RegexParser(pattern).parse();
}

// What remains to match after the current node: the rest of a sequence, then the enclosing continuation.
// Or, when `rep` is set, the end of one iteration of the quantified group `*rep` (the `count`-th, which began
// at `iter_start`), then `next`.
struct Regex::Cont {
    const Seq* seq;
    size_t index;
    const Cont* next;
    const Node* rep = nullptr;
    uint32_t count = 0;
    size_t iter_start = 0;
};

bool Regex::match_cont(const Input& in, const Cont* k, size_t pos, size_t* end) const {
    while (k && !k->rep && k->index == k->seq->size()) k = k->next;
    if (!k) {
        *end = pos;
        return true;
    }
    if (k->rep) {
        if (pos == k->iter_start) return k->count >= k->rep->min && match_cont(in, k->next, pos, end);
        return repeat_group(in, *k->rep, k->count, k->next, pos, end);
    }
    const Node& node = (*k->seq)[k->index];
    const Cont rest{k->seq, k->index + 1, k->next};
    switch (node.kind) {
    case Node::Kind::kClass: {
        size_t n = 0;
        while (n < node.max && pos + n < in.end && node.cls.matches(in.cpts[pos + n], in.flags[pos + n])) ++n;
        if (n < node.min) return false;
        if (node.possessive) return match_cont(in, &rest, pos + n, end);
        for (size_t take = n + 1; take-- > node.min;) // greedy: longest first
            if (match_cont(in, &rest, pos + take, end)) return true;
        return false;
    }
    case Node::Kind::kGroup:
        if (node.min != 1 || node.max != 1) return repeat_group(in, node, 0, &rest, pos, end);
        for (const Seq& seq : alts_[node.alt]) {
            const Cont inner{&seq, 0, &rest};
            if (match_cont(in, &inner, pos, end)) return true;
        }
        return false;
    case Node::Kind::kLookahead:
    case Node::Kind::kNegLookahead: {
        size_t ignored;
        bool found = false;
        for (size_t i = 0; !found && i < alts_[node.alt].size(); ++i) {
            const Cont inner{&alts_[node.alt][i], 0, nullptr};
            found = match_cont(in, &inner, pos, &ignored);
        }
        if (found != (node.kind == Node::Kind::kLookahead)) return false;
        return match_cont(in, &rest, pos, end);
    }
    case Node::Kind::kEnd:
        return pos == in.end && match_cont(in, &rest, pos, end);
    case Node::Kind::kWordBoundary:
        return (pos > in.begin && is_word(in, pos - 1)) != (pos < in.end && is_word(in, pos)) &&
               match_cont(in, &rest, pos, end);
    }
    return false;
}

// `count` iterations of the quantified group `node` matched, the last one ending at `pos`; greedy: one more
// iteration first, then the continuation `next`. An iteration that matches empty ends the loop.
bool Regex::repeat_group(const Input& in, const Node& node, uint32_t count, const Cont* next, size_t pos,
                         size_t* end) const {
    if (count < node.max) {
        for (const Seq& seq : alts_[node.alt]) {
            const Cont after{nullptr, 0, next, &node, count + 1, pos};
            const Cont inner{&seq, 0, &after};
            if (match_cont(in, &inner, pos, end)) return true;
        }
    }
    return count >= node.min && match_cont(in, next, pos, end);
}

bool Regex::is_word(const Input& in, size_t pos) const {
    return is_word_cpt(in.cpts[pos], in.flags[pos]);
}

size_t Regex::match_at(const uint32_t* cpts, const uint8_t* flags, size_t begin, size_t pos, size_t end) const {
    const Input in{cpts, flags, begin, end};
    for (const Seq& seq : alts_[0]) {
        const Cont k{&seq, 0, nullptr};
        size_t match_end;
        if (match_cont(in, &k, pos, &match_end)) return match_end - pos;
    }
    return kNoMatch;
}

std::vector<size_t> regex_split(const Regex& regex, const std::vector<uint32_t>& cpts,
                                const std::vector<uint8_t>& flags, const std::vector<size_t>& offsets) {
    std::vector<size_t> out;
    out.reserve(offsets.size());
    size_t start = 0;
    for (const size_t length : offsets) {
        const size_t end = start + length;
        size_t gap_start = start;
        for (size_t pos = start; pos < end;) {
            const size_t n = regex.match_at(cpts.data(), flags.data(), start, pos, end);
            if (n == Regex::kNoMatch) {
                ++pos;
                continue;
            }
            if (pos > gap_start) out.push_back(pos - gap_start);
            if (n > 0) out.push_back(n);
            gap_start = pos + n;
            pos += n > 0 ? n : 1;
        }
        if (end > gap_start) out.push_back(end - gap_start);
        start = end;
    }
    return out;
}

} // namespace lowbit::tokenizer
