// SPDX-License-Identifier: MIT
// gguf::Value: one GGUF metadata value (ANCHORS.md §3.6 value types 0..12), as a variant whose index equals
// the GGUF value type id. Arrays hold their element type and a vector of Values (nested arrays allowed).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace lowbit::gguf {

// GGUF metadata value types; the numeric ids are the on-disk ids.
enum class ValueType : uint32_t {
    kU8 = 0,
    kI8 = 1,
    kU16 = 2,
    kI16 = 3,
    kU32 = 4,
    kI32 = 5,
    kF32 = 6,
    kBool = 7,
    kString = 8,
    kArray = 9,
    kU64 = 10,
    kI64 = 11,
    kF64 = 12,
};
inline constexpr uint32_t kValueTypeCount = 13;

// "u8", "i32", "string", "array", ... ("?" for ids outside 0..12).
std::string_view value_type_name(ValueType t);
// Bytes of a scalar on disk (0 for string and array).
uint64_t value_type_size(ValueType t);

class Value;

// An array value: every element has type `elem_type` (checked by the reader and the writer).
struct Array {
    ValueType elem_type = ValueType::kU8;
    std::vector<Value> items;
};

class Value {
  public:
    // Alternative index == static_cast<uint32_t>(ValueType).
    using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string, Array,
                                 uint64_t, int64_t, double>;

    Value() = default;
    explicit Value(Storage s) : v_(std::move(s)) {}

    // Typed constructors (explicit names avoid surprises with integer literals).
    static Value u8(uint8_t x) { return Value(Storage(std::in_place_index<0>, x)); }
    static Value i8(int8_t x) { return Value(Storage(std::in_place_index<1>, x)); }
    static Value u16(uint16_t x) { return Value(Storage(std::in_place_index<2>, x)); }
    static Value i16(int16_t x) { return Value(Storage(std::in_place_index<3>, x)); }
    static Value u32(uint32_t x) { return Value(Storage(std::in_place_index<4>, x)); }
    static Value i32(int32_t x) { return Value(Storage(std::in_place_index<5>, x)); }
    static Value f32(float x) { return Value(Storage(std::in_place_index<6>, x)); }
    static Value boolean(bool x) { return Value(Storage(std::in_place_index<7>, x)); }
    static Value string(std::string x) { return Value(Storage(std::in_place_index<8>, std::move(x))); }
    static Value array(ValueType elem_type, std::vector<Value> items) {
        return Value(Storage(std::in_place_index<9>, Array{elem_type, std::move(items)}));
    }
    static Value u64(uint64_t x) { return Value(Storage(std::in_place_index<10>, x)); }
    static Value i64(int64_t x) { return Value(Storage(std::in_place_index<11>, x)); }
    static Value f64(double x) { return Value(Storage(std::in_place_index<12>, x)); }
    // Convenience arrays.
    static Value string_array(const std::vector<std::string>& xs);
    static Value f32_array(const std::vector<float>& xs);
    static Value i32_array(const std::vector<int32_t>& xs);

    ValueType type() const { return static_cast<ValueType>(v_.index()); }
    const Storage& storage() const { return v_; }

    bool is_integer() const; // u8..i64 (not bool)
    bool is_float() const { return type() == ValueType::kF32 || type() == ValueType::kF64; }
    // Any integer type whose value fits int64 (u64 > INT64_MAX gives nullopt); nullopt for other types.
    std::optional<int64_t> as_int() const;
    // Any integer type whose value is >= 0; nullopt otherwise.
    std::optional<uint64_t> as_uint() const;
    // f32/f64, or an integer type (converted); nullopt for other types.
    std::optional<double> as_float() const;
    std::optional<bool> as_bool() const;
    const std::string* as_string() const { return std::get_if<std::string>(&v_); }
    const Array* as_array() const { return std::get_if<Array>(&v_); }

    // JSON text of the value (strings escaped, floats with enough digits to round-trip, arrays as lists).
    std::string to_json() const;

    bool operator==(const Value& o) const;

  private:
    Storage v_;
};

inline bool operator==(const Array& a, const Array& b) {
    return a.elem_type == b.elem_type && a.items == b.items;
}

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s);

} // namespace lowbit::gguf
