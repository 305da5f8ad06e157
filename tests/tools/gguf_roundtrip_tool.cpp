// SPDX-License-Identifier: MIT
// Test helper for tests/oracle/test_gguf_oracle.py (checks lowbit's GGUF reader and writer against gguf-py):
//   gguf_roundtrip_tool write <out.gguf>   writes a file with every metadata value type (nested arrays too) and
//                                          tensors of several dtypes; prints the intended content as JSON.
//   gguf_roundtrip_tool dump <in.gguf>     reads a file with gguf::File and prints its content as JSON.
// JSON: {"version", "alignment", "data_offset", "kvs": [{"key", "value": V}], "tensors": [{"name", "ggml_type",
// "ne" (ggml order), "offset", "nbytes", "sha256"}]}, where V = {"type": "u8".."f64"|"string", "value": x} or
// {"type": "array", "elem_type": t, "value": [V...]}. Exit 0 on success, 2 on bad usage, 1 on errors.
#include "format/gguf/gguf_file.h"
#include "format/gguf/gguf_writer.h"
#include "format/gguf/sha256.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

using lowbit::gguf::Array;
using lowbit::gguf::Value;
using lowbit::gguf::ValueType;
using json = nlohmann::json;

json float_json(double x) {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    return x;
}

json value_json(const Value& v) {
    json j;
    j["type"] = std::string(lowbit::gguf::value_type_name(v.type()));
    std::visit(
        [&j](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, Array>) {
                j["elem_type"] = std::string(lowbit::gguf::value_type_name(x.elem_type));
                json items = json::array();
                for (const Value& item : x.items) items.push_back(value_json(item));
                j["value"] = items;
            } else if constexpr (std::is_floating_point_v<T>) {
                j["value"] = float_json(static_cast<double>(x));
            } else {
                j["value"] = x;
            }
        },
        v.storage());
    return j;
}

// Deterministic bytes: a simple LCG so the Python side need not reproduce them (it hashes what it reads).
std::vector<uint8_t> pattern(uint64_t n, uint32_t seed) {
    std::vector<uint8_t> b(n);
    uint32_t s = seed * 2654435761u + 1;
    for (auto& x : b) {
        s = s * 1664525u + 1013904223u;
        x = static_cast<uint8_t>(s >> 24);
    }
    return b;
}

std::vector<std::pair<std::string, Value>> demo_kvs() {
    using V = Value;
    return {
        {"general.architecture", V::string("llama")},
        {"general.alignment", V::u32(64)},
        {"demo.u8", V::u8(200)},
        {"demo.i8", V::i8(-100)},
        {"demo.u16", V::u16(60000)},
        {"demo.i16", V::i16(-30000)},
        {"demo.u32", V::u32(4000000000u)},
        {"demo.i32", V::i32(-2000000000)},
        {"demo.f32", V::f32(0.1f)},
        {"demo.bool", V::boolean(true)},
        {"demo.string", V::string("caf\xC3\xA9 \xE2\x96\x81x \xF0\x9F\xA6\x99")},
        {"demo.u64", V::u64(18000000000000000000ull)},
        {"demo.i64", V::i64(-9000000000000000000ll)},
        {"demo.f64", V::f64(-2.718281828459045)},
        {"demo.f32_special",
         V::array(ValueType::kF32, {V::f32(std::numeric_limits<float>::infinity()), V::f32(-0.0f), V::f32(1e-45f)})},
        {"demo.arr_u8", V::array(ValueType::kU8, {V::u8(1), V::u8(2), V::u8(255)})},
        {"demo.arr_i64", V::array(ValueType::kI64, {V::i64(-1), V::i64(1ll << 40)})},
        {"demo.arr_bool", V::array(ValueType::kBool, {V::boolean(false), V::boolean(true)})},
        {"demo.arr_string", V::string_array({"<s>", "\xE2\x96\x81the", ""})},
        {"demo.arr_empty", V::array(ValueType::kF64, {})},
        {"demo.nested", V::array(ValueType::kArray, {V::i32_array({1, 2}), V::string_array({"a"}),
                                                     V::array(ValueType::kArray, {V::f32_array({0.5f})})})},
    };
}

int write_demo(const std::string& path) {
    lowbit::gguf::Writer w;
    for (const auto& [k, v] : demo_kvs()) {
        if (auto s = w.set(k, v); !s.ok()) return std::fprintf(stderr, "%s\n", s.error().message.c_str()), 1;
    }
    struct T {
        const char* name;
        lowbit::DType dtype;
        lowbit::Shape shape;
    };
    using lowbit::DType;
    const T tensors[] = {
        {"f32.w", DType::kF32, {3, 5}},     {"f16.w", DType::kF16, {2, 3, 4}},    {"bf16.w", DType::kBF16, {7}},
        {"q8_0.w", DType::kQ8_0, {2, 64}},  {"q4_0.w", DType::kQ4_0, {3, 32}},    {"q4_k.w", DType::kQ4_K, {2, 256}},
        {"q6_k.w", DType::kQ6_K, {1, 512}}, {"i32.w", DType::kI32, {1, 1, 2, 3}}, {"iq4_nl.w", DType::kIQ4_NL, {2, 32}},
        {"f64.w", DType::kF64, {2}},
    };
    json out;
    out["alignment"] = 64;
    out["kvs"] = json::array();
    for (const auto& [k, v] : demo_kvs()) out["kvs"].push_back({{"key", k}, {"value", value_json(v)}});
    out["tensors"] = json::array();
    uint32_t seed = 7;
    for (const T& t : tensors) {
        const uint64_t n = static_cast<uint64_t>(t.shape.n_rows()) *
                           *lowbit::dtype_row_bytes(t.dtype, static_cast<uint64_t>(t.shape.n_cols()));
        auto bytes = pattern(n, seed++);
        json ne = json::array();
        for (int d = t.shape.n_dims - 1; d >= 0; --d) ne.push_back(t.shape[d]);
        out["tensors"].push_back({{"name", t.name},
                                  {"ggml_type", lowbit::dtype_traits(t.dtype).ggml_type},
                                  {"ne", ne},
                                  {"nbytes", n},
                                  {"sha256", lowbit::gguf::sha256_hex(bytes.data(), n)}});
        if (auto s = w.add_tensor(t.name, t.dtype, t.shape, std::move(bytes)); !s.ok())
            return std::fprintf(stderr, "%s\n", s.error().message.c_str()), 1;
    }
    if (auto s = w.write(path); !s.ok()) return std::fprintf(stderr, "%s\n", s.error().message.c_str()), 1;
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

int dump(const std::string& path) {
    auto f = lowbit::gguf::File::open(path);
    if (!f.ok()) return std::fprintf(stderr, "%s\n", f.error().message.c_str()), 1;
    const auto& file = **f;
    json out;
    out["version"] = file.version();
    out["alignment"] = file.alignment();
    out["data_offset"] = file.data_offset();
    out["kvs"] = json::array();
    for (const auto& kv : file.kvs()) out["kvs"].push_back({{"key", kv.key}, {"value", value_json(kv.value)}});
    out["tensors"] = json::array();
    for (const auto& t : file.tensors()) {
        json ne = json::array();
        for (int d = t.shape.n_dims - 1; d >= 0; --d) ne.push_back(t.shape[d]);
        out["tensors"].push_back({{"name", t.name},
                                  {"ggml_type", file.ggml_type(t)},
                                  {"ne", ne},
                                  {"offset", t.offset_bytes},
                                  {"nbytes", t.n_bytes},
                                  {"sha256", lowbit::gguf::sha256_hex(file.tensor_data(t), t.n_bytes)}});
    }
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::string(argv[1]) == "write") return write_demo(argv[2]);
    if (argc == 3 && std::string(argv[1]) == "dump") return dump(argv[2]);
    std::fprintf(stderr, "usage: gguf_roundtrip_tool write <out.gguf> | dump <in.gguf>\n");
    return 2;
}
