// SPDX-License-Identifier: MIT
// safetensors reader/writer: round trips (every dtype, sharding, metadata, streaming) and every class of bad
// input (each must be an error naming the file/tensor, never a crash).
#include "format/safetensors/safetensors_reader.h"
#include "format/safetensors/safetensors_writer.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

namespace lowbit::safetensors {
namespace {

std::string temp_dir(const std::string& name) {
    const std::string d = ::testing::TempDir() + "/st_test_" + name + "_" + std::to_string(::getpid());
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
}

std::vector<uint8_t> pattern(uint64_t n, int seed) {
    std::vector<uint8_t> b(n);
    for (uint64_t k = 0; k < n; ++k) b[k] = static_cast<uint8_t>((seed * 131 + k * 7 + 3) % 251);
    return b;
}

struct Fixture {
    std::vector<TensorToWrite> ts;
    std::vector<std::vector<uint8_t>> bufs;
    Fixture() {
        const DType types[] = {DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kI64,
                               DType::kI32, DType::kI16, DType::kI8,  DType::kU8,   DType::kBool};
        int i = 0;
        bufs.reserve(16);
        for (DType t : types) {
            Shape s{3, 4, 2};
            bufs.push_back(pattern(static_cast<uint64_t>(s.n_elems() * dtype_block_bytes(t)), i));
            if (t == DType::kBool)
                for (auto& b : bufs.back()) b &= 1;
            ts.push_back({"t." + std::string(dtype_name(t)), t, s, bufs.back().data(), {}});
            ++i;
        }
        bufs.push_back(pattern(4, 99));
        ts.push_back({"scalar", DType::kF32, Shape{}, bufs.back().data(), {}});
        ts.push_back({"empty", DType::kF16, Shape{0, 5}, nullptr, {}});
    }
    void expect_equal(const Store& s) const {
        ASSERT_EQ(s.tensors().size(), ts.size());
        for (const auto& t : ts) {
            const format::TensorInfo* info = s.find(t.name);
            ASSERT_NE(info, nullptr) << t.name;
            EXPECT_EQ(info->dtype, t.dtype) << t.name;
            EXPECT_EQ(info->shape, t.shape) << t.name;
            auto v = s.view(t.name);
            ASSERT_TRUE(v.ok());
            if (info->n_bytes) {
                EXPECT_EQ(std::memcmp(v->data, t.data, info->n_bytes), 0) << t.name;
            }
        }
    }
};

TEST(SafetensorsTest, RoundTripEveryDtypeWithMetadata) {
    Fixture f;
    const std::string p = temp_dir("rt") + "/m.safetensors";
    WriteOptions o;
    o.metadata = {{"format", "pt"}, {"note", "héllo"}};
    auto w = write_safetensors(p, f.ts, o);
    ASSERT_TRUE(w.ok()) << w.error().message;
    ASSERT_EQ(w->size(), 1u);
    auto s = Store::open(p);
    ASSERT_TRUE(s.ok()) << s.error().message;
    f.expect_equal(**s);
    EXPECT_EQ((*s)->metadata(), o.metadata);
    // header length is padded to a multiple of 8
    std::ifstream in(p, std::ios::binary);
    uint64_t n = 0;
    in.read(reinterpret_cast<char*>(&n), 8);
    EXPECT_EQ(n % 8, 0u);
}

TEST(SafetensorsTest, ShardedRoundTripThroughIndex) {
    Fixture f;
    const std::string d = temp_dir("shard");
    WriteOptions o;
    o.max_shard_bytes = 100;
    auto w = write_safetensors(d + "/model.safetensors", f.ts, o);
    ASSERT_TRUE(w.ok()) << w.error().message;
    ASSERT_GT(w->size(), 3u);
    EXPECT_EQ(w->back(), d + "/model.safetensors.index.json");
    EXPECT_NE(w->front().find("model-00001-of-"), std::string::npos);
    for (const auto& open_path : {d, w->back()}) {
        auto s = Store::open(open_path);
        ASSERT_TRUE(s.ok()) << s.error().message;
        f.expect_equal(**s);
        EXPECT_EQ((*s)->paths().size(), w->size() - 1);
        uint64_t total = 0;
        for (const auto& t : f.ts) total += static_cast<uint64_t>(t.shape.n_elems() * dtype_block_bytes(t.dtype));
        EXPECT_EQ((*s)->index_metadata().at("total_size"), std::to_string(total));
    }
}

TEST(SafetensorsTest, ProducerStreamsAndMustMatchSize) {
    const std::string p = temp_dir("prod") + "/p.safetensors";
    auto data = pattern(64, 1);
    TensorToWrite t{"x", DType::kF32, Shape{4, 4}, nullptr, [&](const ByteSink& sink) -> Status {
                        LOWBIT_TRY(sink(data.data(), 10));
                        return sink(data.data() + 10, 54);
                    }};
    ASSERT_TRUE(write_safetensors(p, {t}).ok());
    auto s = Store::open(p);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(std::memcmp((*s)->view("x")->data, data.data(), 64), 0);
    t.produce = [&](const ByteSink& sink) { return sink(data.data(), 60); };
    const std::string p2 = p + ".short";
    auto bad = write_safetensors(p2, {t});
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("producer wrote 60 bytes"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(p2)); // atomic: nothing left behind
}

TEST(SafetensorsTest, WriterRejectsDuplicateNamesAndBlockTypes) {
    auto data = pattern(4, 0);
    auto r = write_safetensors(temp_dir("dup") + "/d.safetensors", {{"a", DType::kF32, Shape{1}, data.data(), {}},
                                                                    {"a", DType::kF32, Shape{1}, data.data(), {}}});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUsage);
    auto q = write_safetensors(temp_dir("q") + "/q.safetensors", {{"a", DType::kQ8_0, Shape{32}, data.data(), {}}});
    ASSERT_FALSE(q.ok());
}

// A file image: 8-byte length + header (+ optional padding) + data.
std::vector<uint8_t> image(const std::string& header, uint64_t n_data, std::optional<uint64_t> len = std::nullopt) {
    std::string s;
    const uint64_t n = len.value_or(header.size());
    for (int i = 0; i < 8; ++i) s += static_cast<char>(static_cast<uint8_t>(n >> (8 * i)));
    s += header;
    s.append(n_data, '\0');
    return std::vector<uint8_t>(s.begin(), s.end());
}

void expect_bad(const std::vector<uint8_t>& img, ErrorCode code, const std::string& needle) {
    auto s = Store::from_buffer(img.data(), img.size(), "x.safetensors");
    ASSERT_FALSE(s.ok()) << needle;
    EXPECT_EQ(s.error().code, code) << s.error().message;
    EXPECT_NE(s.error().message.find(needle), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find("x.safetensors"), std::string::npos) << s.error().message;
}

const std::string kTwo =
    R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";

TEST(SafetensorsTest, AcceptsValidImage) {
    auto img = image(kTwo, 12);
    auto s = Store::from_buffer(img.data(), img.size());
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ((*s)->tensors().size(), 2u);
    EXPECT_EQ((*s)->find("b")->offset_bytes, 8 + kTwo.size() + 8);
}

TEST(SafetensorsTest, RejectsBadInput) {
    auto trunc = image(kTwo, 12);
    trunc.resize(trunc.size() - 3);
    expect_bad(trunc, ErrorCode::kBadInput, "truncated");
    expect_bad({1, 2, 3}, ErrorCode::kBadInput, "shorter than the 8-byte header length");
    expect_bad(image(kTwo, 12, 1ull << 60), ErrorCode::kBadInput, "exceeds the 100000000-byte limit");
    expect_bad(image(kTwo, 12, 4096), ErrorCode::kBadInput, "exceeds the file");
    expect_bad(image(R"({"a":{"dtype":"F32",)", 12), ErrorCode::kBadInput, "not valid JSON");
    expect_bad(image(R"([1,2])", 0), ErrorCode::kBadInput, "not a JSON object");
    expect_bad(
        image(
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            12),
        ErrorCode::kBadInput, "tensor 'b' at data offset 4 overlaps");
    expect_bad(
        image(
            R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
            12),
        ErrorCode::kBadInput, "hole of 4 bytes before tensor 'b'");
    expect_bad(image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), ErrorCode::kBadInput,
               "tensor 'a': shape [3] of F32 needs 12 bytes but data_offsets span 8");
    expect_bad(image(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8), ErrorCode::kBadInput,
               "tensor 'a' needs 16 bytes at data offset 0 but the data section ends at 8");
    expect_bad(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 8), ErrorCode::kBadInput,
               "begin 4 > end 0");
    expect_bad(
        image(
            R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            8),
        ErrorCode::kBadInput, "tensor name 'a' appears twice");
    expect_bad(image("{\"\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), ErrorCode::kBadInput,
               "not valid JSON");
    expect_bad(image(R"({"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}})", 4), ErrorCode::kBadInput,
               "unknown dtype 'Q9'");
    expect_bad(image(R"({"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", 4), ErrorCode::kUnsupported,
               "F8_E4M3");
    expect_bad(image(R"({"a":{"dtype":"U8","shape":[1,1,1,1,1],"data_offsets":[0,1]}})", 1), ErrorCode::kUnsupported,
               "5 dimensions");
    expect_bad(image(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4), ErrorCode::kBadInput,
               "missing field 'shape'");
    expect_bad(image(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4), ErrorCode::kBadInput,
               "non-negative");
    expect_bad(image(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
               ErrorCode::kBadInput, "overflows");
    expect_bad(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 6), ErrorCode::kBadInput,
               "trailing bytes");
    expect_bad(image(R"({"__metadata__":{"k":1}})", 0), ErrorCode::kBadInput, "__metadata__ value 'k' is not a string");
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
}

TEST(SafetensorsTest, RejectsBadIndex) {
    const std::string d = temp_dir("badidx");
    auto data = pattern(8, 0);
    ASSERT_TRUE(
        write_safetensors(d + "/model-00001-of-00002.safetensors", {{"x", DType::kF32, Shape{2}, data.data(), {}}})
            .ok());
    write_text(d + "/model.safetensors.index.json",
               R"({"weight_map":{"x":"model-00001-of-00002.safetensors","y":"model-00002-of-00002.safetensors"}})");
    auto s = Store::open(d);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("names shard 'model-00002-of-00002.safetensors'"), std::string::npos)
        << s.error().message;
    write_text(d + "/model.safetensors.index.json",
               R"({"weight_map":{"x":"model-00001-of-00002.safetensors","y":"model-00001-of-00002.safetensors"}})");
    s = Store::open(d);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("maps tensor 'y'"), std::string::npos) << s.error().message;
    write_text(d + "/model.safetensors.index.json", R"({"weight_map":{"x":"../etc/passwd"}})");
    s = Store::open(d);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("not a file in the same folder"), std::string::npos);
    write_text(d + "/model.safetensors.index.json", R"({"weight_map":)");
    s = Store::open(d);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kBadInput);
    EXPECT_FALSE(Store::open(d + "/nothing_here").ok());
}

} // namespace
} // namespace lowbit::safetensors
