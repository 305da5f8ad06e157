// SPDX-License-Identifier: MIT
// Writer -> reader round trips: every GGUF-storable dtype, every metadata value type (nested arrays too),
// custom alignments, streaming producers; writer-side validation; SHA-256 test vectors.
#include "core/file.h"
#include "core/test_support.h"
#include "format/gguf/gguf_file.h"
#include "format/gguf/gguf_writer.h"
#include "format/gguf/sha256.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <limits>
#include <random>
#include <thread>

namespace lowbit::gguf {
namespace {

std::vector<uint8_t> random_bytes(uint64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    return b;
}

std::string temp_path(const std::string& name) {
    return testing_support::temp_dir() + "/lowbit_gguf_" + name;
}

std::vector<std::pair<std::string, Value>> all_value_kinds() {
    using V = Value;
    return {
        {"t.u8", V::u8(255)},
        {"t.i8", V::i8(-128)},
        {"t.u16", V::u16(65535)},
        {"t.i16", V::i16(-32768)},
        {"t.u32", V::u32(4294967295u)},
        {"t.i32", V::i32(std::numeric_limits<int32_t>::min())},
        {"t.f32", V::f32(-1.5e-7f)},
        {"t.bool_true", V::boolean(true)},
        {"t.bool_false", V::boolean(false)},
        {"t.string", V::string("h\xC3\xA9llo \xE2\x96\x81 \xF0\x9F\x98\x80 \"q\"\n")},
        {"t.empty_string", V::string("")},
        {"t.u64", V::u64(std::numeric_limits<uint64_t>::max())},
        {"t.i64", V::i64(std::numeric_limits<int64_t>::min())},
        {"t.f64", V::f64(3.141592653589793)},
        {"t.arr_u8", V::array(ValueType::kU8, {V::u8(0), V::u8(7), V::u8(255)})},
        {"t.arr_i16", V::array(ValueType::kI16, {V::i16(-1), V::i16(2)})},
        {"t.arr_f32", V::f32_array({0.f, -2.5f, 1e30f})},
        {"t.arr_bool", V::array(ValueType::kBool, {V::boolean(true), V::boolean(false)})},
        {"t.arr_string", V::string_array({"a", "", "\xE2\x96\x81the"})},
        {"t.arr_empty", V::array(ValueType::kI32, {})},
        {"t.arr_u64", V::array(ValueType::kU64, {V::u64(1ull << 63)})},
        {"t.arr_f64", V::array(ValueType::kF64, {V::f64(-0.0), V::f64(1e-300)})},
        {"t.nested", V::array(ValueType::kArray, {V::string_array({"x", "y"}), V::i32_array({1, 2, 3}),
                                                  V::array(ValueType::kArray, {V::f32_array({4.f})})})},
    };
}

TEST(GgufWriter, RoundTripEveryDtype) {
    Writer w;
    ASSERT_TRUE(w.set("general.architecture", Value::string("llama")).ok());
    std::vector<std::tuple<std::string, DType, Shape, std::vector<uint8_t>>> expect;
    uint32_t seed = 1;
    for (int i = 0; i < static_cast<int>(DType::kCount); ++i) {
        const auto dt = static_cast<DType>(i);
        if (dtype_traits(dt).ggml_type < 0) continue;
        const Shape shape{3, 2 * dtype_block_elems(dt)};
        const uint64_t n = 3 * 2 * static_cast<uint64_t>(dtype_block_bytes(dt));
        auto bytes = random_bytes(n, seed++);
        const std::string name = std::string("w.") + std::string(dtype_name(dt));
        ASSERT_TRUE(w.add_tensor(name, dt, shape, bytes).ok()) << name;
        expect.emplace_back(name, dt, shape, std::move(bytes));
    }
    // 1-D and 4-D shapes too.
    auto b1 = random_bytes(5 * 4, 99);
    ASSERT_TRUE(w.add_tensor("v1", DType::kF32, Shape{5}, b1).ok());
    expect.emplace_back("v1", DType::kF32, Shape{5}, b1);
    auto b4 = random_bytes(2 * 3 * 1 * 64 / 32 * 34, 98);
    ASSERT_TRUE(w.add_tensor("v4", DType::kQ8_0, Shape{2, 3, 1, 64}, b4).ok());
    expect.emplace_back("v4", DType::kQ8_0, Shape{2, 3, 1, 64}, b4);

    const std::string path = temp_path("dtypes.gguf");
    ASSERT_TRUE(w.write(path).ok());
    auto f = File::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    ASSERT_EQ((*f)->tensors().size(), expect.size());
    EXPECT_EQ((*f)->version(), 3u);
    EXPECT_EQ((*f)->alignment(), 32u);
    EXPECT_EQ((*f)->data_offset() % 32, 0u);
    for (size_t i = 0; i < expect.size(); ++i) {
        const auto& [name, dt, shape, bytes] = expect[i];
        const auto& t = (*f)->tensors()[i];
        EXPECT_EQ(t.name, name);
        EXPECT_EQ(t.dtype, dt) << name;
        EXPECT_TRUE(t.shape == shape) << name << " " << t.shape.to_string();
        EXPECT_EQ(t.n_bytes, bytes.size()) << name;
        EXPECT_EQ(t.offset_bytes % 32, 0u) << name;
        EXPECT_EQ((*f)->ggml_type(t), dtype_traits(dt).ggml_type);
        ASSERT_EQ(std::memcmp((*f)->tensor_data(t), bytes.data(), bytes.size()), 0) << name;
        auto v = (*f)->view(name);
        ASSERT_TRUE(v.ok());
        EXPECT_EQ(v->n_bytes(), bytes.size());
        EXPECT_EQ(static_cast<const uint8_t*>(v->data), (*f)->tensor_data(t));
    }
    EXPECT_EQ((*f)->find("absent"), nullptr);
    EXPECT_FALSE((*f)->view("absent").ok());
    std::remove(path.c_str());
}

TEST(GgufWriter, RoundTripEveryValueType) {
    Writer w;
    const auto kinds = all_value_kinds();
    for (const auto& [k, v] : kinds) ASSERT_TRUE(w.set(k, v).ok()) << k;
    auto bytes = w.write_to_memory();
    ASSERT_TRUE(bytes.ok());
    auto f = File::open_memory(*bytes);
    ASSERT_TRUE(f.ok()) << f.error().message;
    ASSERT_EQ((*f)->kvs().size(), kinds.size());
    for (size_t i = 0; i < kinds.size(); ++i) {
        EXPECT_EQ((*f)->kvs()[i].key, kinds[i].first);
        EXPECT_TRUE((*f)->kvs()[i].value == kinds[i].second)
            << kinds[i].first << " read back as " << (*f)->kvs()[i].value.to_json();
        EXPECT_EQ((*f)->kvs()[i].value.type(), kinds[i].second.type());
    }
    // Typed accessors.
    EXPECT_EQ((*f)->get_int("t.u8"), 255);
    EXPECT_EQ((*f)->get_int("t.i64"), std::numeric_limits<int64_t>::min());
    EXPECT_EQ((*f)->get_int("t.u64"), std::nullopt); // does not fit int64
    EXPECT_EQ((*f)->get_uint("t.u64"), std::numeric_limits<uint64_t>::max());
    EXPECT_EQ((*f)->get_uint("t.i8"), std::nullopt);
    EXPECT_FLOAT_EQ(static_cast<float>(*(*f)->get_float("t.f32")), -1.5e-7f);
    EXPECT_EQ((*f)->get_bool("t.bool_true"), true);
    EXPECT_EQ((*f)->get_string("t.string"), kinds[9].second.as_string()[0]);
    EXPECT_EQ((*f)->get_string("t.u8"), std::nullopt);
    ASSERT_NE((*f)->get_array("t.nested"), nullptr);
    EXPECT_EQ((*f)->get_array("t.nested")->items.size(), 3u);
    auto wrong = (*f)->lookup_string("t.u32");
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.error().code, ErrorCode::kBadInput);
    EXPECT_NE(wrong.error().message.find("'t.u32' has type u32, expected string"), std::string::npos);
    auto missing = (*f)->require_int("no.such.key");
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("'no.such.key' is missing"), std::string::npos);
    auto arr = (*f)->lookup_array("t.arr_f32", ValueType::kString);
    ASSERT_FALSE(arr.ok());
    EXPECT_NE(arr.error().message.find("array of f32, expected an array of string"), std::string::npos);
    EXPECT_EQ(Value::string("a\"b\n").to_json(), "\"a\\\"b\\n\"");
    EXPECT_EQ((*f)->get("t.nested")->to_json(), "[[\"x\",\"y\"],[1,2,3],[[4]]]");
}

TEST(GgufWriter, CustomAlignment) {
    for (uint32_t align : {1u, 8u, 64u, 4096u}) {
        Writer w;
        ASSERT_TRUE(w.set("general.alignment", Value::u32(align)).ok());
        ASSERT_TRUE(w.add_tensor("a", DType::kF16, Shape{3}, random_bytes(6, 1)).ok());
        ASSERT_TRUE(w.add_tensor("b", DType::kQ4_K, Shape{1, 256}, random_bytes(144, 2)).ok());
        ASSERT_TRUE(w.add_tensor("c", DType::kI8, Shape{7}, random_bytes(7, 3)).ok());
        auto bytes = w.write_to_memory();
        ASSERT_TRUE(bytes.ok());
        EXPECT_EQ(bytes->size() % align, 0u);
        auto f = File::open_memory(*bytes);
        ASSERT_TRUE(f.ok()) << f.error().message;
        EXPECT_EQ((*f)->alignment(), align);
        EXPECT_EQ((*f)->data_offset() % align, 0u);
        for (const auto& t : (*f)->tensors()) EXPECT_EQ(t.offset_bytes % align, 0u) << t.name;
        EXPECT_EQ(std::memcmp((*f)->tensor_data(*(*f)->find("b")), random_bytes(144, 2).data(), 144), 0);
    }
}

TEST(GgufWriter, ProducerStreamsAndIsChecked) {
    const auto data = random_bytes(4 * 1000, 5);
    Writer w;
    ASSERT_TRUE(w.add_tensor_producer("p", DType::kF32, Shape{10, 100}, [&](const ByteSink& sink) -> Status {
                     for (size_t i = 0; i < data.size(); i += 333) {
                         LOWBIT_TRY(sink(data.data() + i, std::min<size_t>(333, data.size() - i)));
                     }
                     return ok_status();
                 }).ok());
    ASSERT_TRUE(w.add_tensor_ref("r", DType::kF32, Shape{1000}, data.data()).ok());
    const std::string path = temp_path("producer.gguf");
    ASSERT_TRUE(w.write(path).ok());
    auto f = File::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    for (const char* name : {"p", "r"}) {
        const auto* t = (*f)->find(name);
        ASSERT_NE(t, nullptr);
        EXPECT_EQ(std::memcmp((*f)->tensor_data(*t), data.data(), data.size()), 0) << name;
    }
    std::remove(path.c_str());

    // A producer that writes too little fails the write and leaves no file (atomic write).
    Writer bad;
    ASSERT_TRUE(bad.add_tensor_producer("p", DType::kF32, Shape{4},
                                        [](const ByteSink& sink) -> Status { return sink("abcd", 4); })
                    .ok());
    const std::string bad_path = temp_path("short.gguf");
    auto s = bad.write(bad_path);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("wrote 4 of its 16 bytes"), std::string::npos);
    EXPECT_FALSE(file_exists(bad_path));
}

// Positional producers: pieces written from several threads in scrambled order land in place, in the file and in
// memory; the bytes equal those of the same tensor added whole, beside ordinary tensors with their padding.
TEST(GgufWriter, PositionalProducerWritesPiecesInPlace) {
    const auto data = random_bytes(4 * 3000, 9);
    const auto small = random_bytes(4 * 7, 10);
    const auto build = [&](bool positional) {
        Writer w;
        EXPECT_TRUE(w.add_tensor("a", DType::kF32, Shape{7}, small).ok()); // 28 bytes: padding follows
        if (positional) {
            EXPECT_TRUE(
                w.add_tensor_positional("p", DType::kF32, Shape{30, 100}, [&](const PositionalSink& sink) -> Status {
                     std::vector<Status> st(4, ok_status());
                     std::vector<std::thread> th;
                     for (int k = 0; k < 4; ++k) // thread k writes pieces k, k + 4, ... from the end
                         th.emplace_back([&, k] {
                             for (size_t i = 11 - static_cast<size_t>(k); i < 12; i -= 4) {
                                 const size_t off = i * 1000;
                                 if (Status r = sink(off, data.data() + off, 1000); !r.ok()) st[k] = r;
                                 if (i < 4) break;
                             }
                         });
                     for (auto& t : th) t.join();
                     for (const Status& r : st) LOWBIT_TRY(r);
                     return ok_status();
                 }).ok());
        } else {
            EXPECT_TRUE(w.add_tensor("p", DType::kF32, Shape{30, 100}, data).ok());
        }
        EXPECT_TRUE(w.add_tensor("z", DType::kF32, Shape{7}, small).ok());
        return w;
    };
    const auto want = build(false).write_to_memory();
    ASSERT_TRUE(want.ok());
    const auto mem = build(true).write_to_memory();
    ASSERT_TRUE(mem.ok()) << mem.error().message;
    EXPECT_EQ(*mem, *want);
    const std::string path = temp_path("positional.gguf");
    ASSERT_TRUE(build(true).write(path).ok());
    const auto bytes = read_file_to_string(path);
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ(std::string(want->begin(), want->end()), *bytes);
    std::remove(path.c_str());

    // A piece outside the tensor, or a total short of it, fails the write and leaves no file.
    for (const bool outside : {true, false}) {
        Writer bad;
        ASSERT_TRUE(bad.add_tensor_positional("p", DType::kF32, Shape{4},
                                              [outside](const PositionalSink& sink) -> Status {
                                                  return outside ? sink(13, "abcd", 4) : sink(4, "abcd", 4);
                                              })
                        .ok());
        const std::string bad_path = temp_path("positional-bad.gguf");
        const Status st = bad.write(bad_path);
        ASSERT_FALSE(st.ok());
        EXPECT_NE(st.error().message.find(outside ? "outside its 16 bytes" : "wrote 4 of its 16 bytes"),
                  std::string::npos)
            << st.error().message;
        EXPECT_FALSE(file_exists(bad_path));
        EXPECT_FALSE(bad.write_to_memory().ok());
    }
}

TEST(GgufWriter, RejectsInvalidInput) {
    Writer w;
    EXPECT_EQ(w.set("", Value::u8(1)).error().code, ErrorCode::kUsage);
    EXPECT_FALSE(w.set("k\xFF", Value::u8(1)).ok());
    EXPECT_FALSE(w.set("k", Value::string("\xC0\x80")).ok()); // overlong NUL
    EXPECT_FALSE(w.set("k", Value::array(ValueType::kU8, {Value::u8(1), Value::i8(1)})).ok());
    EXPECT_FALSE(w.set("general.alignment", Value::u32(0)).ok());
    EXPECT_FALSE(w.set("general.alignment", Value::u32(3)).ok());
    EXPECT_FALSE(w.set("general.alignment", Value::string("32")).ok());
    ASSERT_TRUE(w.set("k", Value::u8(1)).ok());
    ASSERT_TRUE(w.set("k2", Value::u8(2)).ok());
    ASSERT_TRUE(w.set("k", Value::string("replaced")).ok()); // keeps its position
    EXPECT_EQ(w.n_kvs(), 2u);
    EXPECT_EQ(*w.get("k")->as_string(), "replaced");
    w.remove("k");
    EXPECT_EQ(w.get("k"), nullptr);
    EXPECT_EQ(w.get("k2")->as_int(), 2);

    EXPECT_FALSE(w.add_tensor("q", DType::kQ4_0, Shape{2, 33}, random_bytes(0, 1)).ok());
    EXPECT_FALSE(w.add_tensor("z", DType::kF32, Shape{0, 3}, {}).ok());
    EXPECT_FALSE(w.add_tensor("n", DType::kF32, Shape{2}, random_bytes(7, 1)).ok());
    EXPECT_EQ(w.add_tensor("u", DType::kU8, Shape{2}, random_bytes(2, 1)).error().code, ErrorCode::kUnsupported);
    EXPECT_FALSE(w.add_tensor(std::string(64, 'x'), DType::kF32, Shape{1}, random_bytes(4, 1)).ok());
    ASSERT_TRUE(w.add_tensor("d", DType::kF32, Shape{1}, random_bytes(4, 1)).ok());
    auto dup = w.add_tensor("d", DType::kF32, Shape{1}, random_bytes(4, 1));
    ASSERT_FALSE(dup.ok());
    EXPECT_NE(dup.error().message.find("'d' was added twice"), std::string::npos);
}

TEST(Sha256, KnownVectors) {
    EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    EXPECT_EQ(sha256_hex(two_blocks.data(), two_blocks.size()),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    Sha256 h; // incremental, odd piece sizes: one million 'a'
    const std::string chunk(997, 'a');
    uint64_t left = 1000000;
    while (left) {
        const uint64_t n = std::min<uint64_t>(left, chunk.size());
        h.update(chunk.data(), n);
        left -= n;
    }
    EXPECT_EQ(h.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

} // namespace
} // namespace lowbit::gguf
