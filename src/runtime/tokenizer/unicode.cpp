// SPDX-License-Identifier: MIT
// UTF-8 coding, category lookup and the GPT-2 byte <-> unicode mapping.
#include "runtime/tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace lowbit::tokenizer {

uint8_t cpt_flags(uint32_t cpt) {
    if (cpt > 0x10FFFF) return 0;
    const detail::CptRun* begin = detail::kCptRuns;
    const detail::CptRun* end = begin + detail::kCptRunCount;
    const detail::CptRun* it =
        std::upper_bound(begin, end, cpt, [](uint32_t c, const detail::CptRun& r) { return c < r.start; });
    return it == begin ? 0 : (it - 1)->flags;
}

uint16_t cpt_sub_flags(uint32_t cpt) {
    if (cpt > 0x10FFFF) return 0;
    const detail::CptSubRun* begin = detail::kCptSubRuns;
    const detail::CptSubRun* end = begin + detail::kCptSubRunCount;
    const detail::CptSubRun* it =
        std::upper_bound(begin, end, cpt, [](uint32_t c, const detail::CptSubRun& r) { return c < r.start; });
    return it == begin ? 0 : (it - 1)->flags;
}

const char* unicode_version() {
    return detail::kUnicodeVersion;
}

bool utf8_decode_one(std::string_view text, size_t* offset, uint32_t* cpt) {
    const size_t pos = *offset;
    const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[pos + i]); };
    const uint8_t b0 = byte(0);
    size_t len;
    uint32_t c, min;
    if (b0 < 0x80) {
        *cpt = b0;
        *offset = pos + 1;
        return true;
    } else if ((b0 & 0xE0) == 0xC0) {
        len = 2, c = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3, c = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4, c = b0 & 0x07, min = 0x10000;
    } else {
        return false;
    }
    if (pos + len > text.size()) return false;
    for (size_t i = 1; i < len; ++i) {
        if ((byte(i) & 0xC0) != 0x80) return false;
        c = (c << 6) | (byte(i) & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
    *cpt = c;
    *offset = pos + len;
    return true;
}

std::vector<uint32_t> utf8_to_cpts(std::string_view text) {
    std::vector<uint32_t> cpts;
    cpts.reserve(text.size());
    size_t offset = 0;
    while (offset < text.size()) {
        uint32_t c;
        if (utf8_decode_one(text, &offset, &c)) {
            cpts.push_back(c);
        } else {
            cpts.push_back(0xFFFD);
            ++offset;
        }
    }
    return cpts;
}

void append_utf8(uint32_t cpt, std::string* out) {
    if (cpt < 0x80) {
        out->push_back(static_cast<char>(cpt));
    } else if (cpt < 0x800) {
        out->push_back(static_cast<char>(0xC0 | (cpt >> 6)));
        out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    } else if (cpt < 0x10000) {
        out->push_back(static_cast<char>(0xE0 | (cpt >> 12)));
        out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
        out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    } else {
        out->push_back(static_cast<char>(0xF0 | (cpt >> 18)));
        out->push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
        out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
        out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    }
}

size_t utf8_first_invalid(std::string_view text) {
    size_t offset = 0;
    uint32_t c;
    while (offset < text.size())
        if (!utf8_decode_one(text, &offset, &c)) return offset;
    return std::string_view::npos;
}

Status check_utf8_text(std::string_view text, std::string_view what) {
    const size_t bad = utf8_first_invalid(text);
    if (bad == std::string_view::npos) return ok_status();
    char hex[8];
    std::snprintf(hex, sizeof(hex), "%02X", static_cast<unsigned>(static_cast<uint8_t>(text[bad])));
    return make_error(ErrorCode::kBadInput, std::string(what) + " is not valid UTF-8: byte 0x" + hex + " at offset " +
                                                std::to_string(bad) + " (convert the text to UTF-8)");
}

size_t utf8_complete_prefix(std::string_view text) {
    // Only the last 3 bytes can hold an incomplete sequence; find the last lead byte among them.
    const size_t n = text.size();
    for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
        const uint8_t b = static_cast<uint8_t>(text[n - back]);
        if ((b & 0xC0) == 0x80) continue; // continuation byte: keep looking for its lead
        const size_t need = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
        if (need <= back) return n; // ASCII or a sequence with all its bytes present (valid or not)
        // The tail is a plausible prefix when some continuation bytes complete it (E0 needs A0.., F4 needs ..8F).
        for (const uint8_t pad : {0x80, 0xA0, 0xBF}) {
            std::string probe(text.substr(n - back));
            while (probe.size() < need) probe.push_back(static_cast<char>(pad));
            size_t off = 0;
            uint32_t c;
            if (utf8_decode_one(probe, &off, &c)) return n - back;
        }
        return n;
    }
    return n;
}

namespace {

struct ByteMaps {
    std::array<std::string, 256> byte_to_utf8;
    std::array<int, 324> cpt_to_byte; // every mapped code point is < 256 + 68
    ByteMaps() {
        cpt_to_byte.fill(-1);
        int n = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
            const uint32_t cpt = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
            append_utf8(cpt, &byte_to_utf8[b]);
            cpt_to_byte[cpt] = b;
        }
    }
};

const ByteMaps& byte_maps() {
    static const ByteMaps maps;
    return maps;
}

} // namespace

const std::string& byte_to_unicode_utf8(uint8_t byte) {
    return byte_maps().byte_to_utf8[byte];
}

int unicode_to_byte(uint32_t cpt) {
    return cpt < 324 ? byte_maps().cpt_to_byte[cpt] : -1;
}

std::string byte_encode(std::string_view text) {
    std::string out;
    out.reserve(text.size() * 2);
    for (char ch : text) out += byte_to_unicode_utf8(static_cast<uint8_t>(ch));
    return out;
}

} // namespace lowbit::tokenizer
