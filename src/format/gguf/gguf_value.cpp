// SPDX-License-Identifier: MIT
// gguf::Value accessors, JSON rendering and the UTF-8 validator used by the reader and writer.
#include "format/gguf/gguf_value.h"

#include <cmath>
#include <fmt/format.h>
#include <limits>

namespace lowbit::gguf {

std::string_view value_type_name(ValueType t) {
    static constexpr std::string_view kNames[kValueTypeCount] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                                 "bool", "string", "array", "u64", "i64", "f64"};
    const auto i = static_cast<uint32_t>(t);
    return i < kValueTypeCount ? kNames[i] : std::string_view("?");
}

uint64_t value_type_size(ValueType t) {
    switch (t) {
    case ValueType::kU8:
    case ValueType::kI8:
    case ValueType::kBool:
        return 1;
    case ValueType::kU16:
    case ValueType::kI16:
        return 2;
    case ValueType::kU32:
    case ValueType::kI32:
    case ValueType::kF32:
        return 4;
    case ValueType::kU64:
    case ValueType::kI64:
    case ValueType::kF64:
        return 8;
    case ValueType::kString:
    case ValueType::kArray:
        return 0;
    }
    return 0;
}

Value Value::string_array(const std::vector<std::string>& xs) {
    std::vector<Value> v;
    v.reserve(xs.size());
    for (const auto& s : xs) v.push_back(Value::string(s));
    return array(ValueType::kString, std::move(v));
}

Value Value::f32_array(const std::vector<float>& xs) {
    std::vector<Value> v;
    v.reserve(xs.size());
    for (float x : xs) v.push_back(Value::f32(x));
    return array(ValueType::kF32, std::move(v));
}

Value Value::i32_array(const std::vector<int32_t>& xs) {
    std::vector<Value> v;
    v.reserve(xs.size());
    for (int32_t x : xs) v.push_back(Value::i32(x));
    return array(ValueType::kI32, std::move(v));
}

bool Value::is_integer() const {
    switch (type()) {
    case ValueType::kU8:
    case ValueType::kI8:
    case ValueType::kU16:
    case ValueType::kI16:
    case ValueType::kU32:
    case ValueType::kI32:
    case ValueType::kU64:
    case ValueType::kI64:
        return true;
    default:
        return false;
    }
}

std::optional<int64_t> Value::as_int() const {
    return std::visit(
        [](const auto& x) -> std::optional<int64_t> {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, uint64_t>) {
                if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
                return static_cast<int64_t>(x);
            } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
                return static_cast<int64_t>(x);
            } else {
                return std::nullopt;
            }
        },
        v_);
}

std::optional<uint64_t> Value::as_uint() const {
    if (type() == ValueType::kU64) return std::get<uint64_t>(v_);
    const auto i = as_int();
    if (!i || *i < 0) return std::nullopt;
    return static_cast<uint64_t>(*i);
}

std::optional<double> Value::as_float() const {
    if (type() == ValueType::kF32) return static_cast<double>(std::get<float>(v_));
    if (type() == ValueType::kF64) return std::get<double>(v_);
    if (type() == ValueType::kU64) return static_cast<double>(std::get<uint64_t>(v_));
    if (const auto i = as_int()) return static_cast<double>(*i);
    return std::nullopt;
}

std::optional<bool> Value::as_bool() const {
    if (const bool* b = std::get_if<bool>(&v_)) return *b;
    return std::nullopt;
}

namespace {

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20)
                out += fmt::format("\\u{:04x}", c);
            else
                out += static_cast<char>(c);
        }
    }
    out += '"';
}

template <class F> std::string json_float(F x) {
    if (std::isnan(x)) return "NaN";
    if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
    return fmt::format("{}", x); // shortest round-trip representation
}

void append_json(std::string& out, const Value& v) {
    std::visit(
        [&out](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string>)
                append_json_string(out, x);
            else if constexpr (std::is_same_v<T, Array>) {
                out += '[';
                for (size_t i = 0; i < x.items.size(); ++i) {
                    if (i) out += ',';
                    append_json(out, x.items[i]);
                }
                out += ']';
            } else if constexpr (std::is_same_v<T, bool>)
                out += x ? "true" : "false";
            else if constexpr (std::is_floating_point_v<T>)
                out += json_float(x);
            else
                out += std::to_string(x);
        },
        v.storage());
}

} // namespace

std::string Value::to_json() const {
    std::string out;
    append_json(out, *this);
    return out;
}

bool Value::operator==(const Value& o) const {
    return v_ == o.v_;
}

bool is_valid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        int len;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0)
            len = 2, cp = c & 0x1Fu;
        else if ((c & 0xF0) == 0xE0)
            len = 3, cp = c & 0x0Fu;
        else if ((c & 0xF8) == 0xF0)
            len = 4, cp = c & 0x07u;
        else
            return false;
        if (n - i < static_cast<size_t>(len)) return false;
        for (int k = 1; k < len; ++k) {
            const unsigned char cc = p[i + static_cast<size_t>(k)];
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += static_cast<size_t>(len);
    }
    return true;
}

} // namespace lowbit::gguf
