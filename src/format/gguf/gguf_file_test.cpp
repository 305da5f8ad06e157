// SPDX-License-Identifier: MIT
// Reader tests: hand-built malformed files (each asserting the error code and a message substring, never a
// crash), every truncation of a small valid file, and llama.cpp's golden files checked against manifest.json
// (names, types, shapes, offsets, sizes, sha256 of every tensor's bytes, metadata values).
#include "core/file.h"
#include "core/test_support.h"
#include "format/gguf/gguf_file.h"
#include "format/gguf/gguf_writer.h"
#include "format/gguf/sha256.h"
#include "scheme/scheme_list.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace lowbit::gguf {
namespace {

// Raw little-endian GGUF builder that can express invalid files.
struct Raw {
    std::vector<uint8_t> b;
    template <class T> Raw& put(T x) {
        const auto* p = reinterpret_cast<const uint8_t*>(&x);
        b.insert(b.end(), p, p + sizeof(T));
        return *this;
    }
    Raw& str(std::string_view s) {
        put<uint64_t>(s.size());
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Raw& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
        b.insert(b.end(), {'G', 'G', 'U', 'F'});
        return put(version).put(n_tensors).put(n_kv);
    }
    Raw& kv_str(std::string_view key, std::string_view value) { return str(key).put<uint32_t>(8).str(value); }
    Raw& kv_u32(std::string_view key, uint32_t value) { return str(key).put<uint32_t>(4).put(value); }
    Raw& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
        str(name).put<uint32_t>(static_cast<uint32_t>(ne.size()));
        for (uint64_t x : ne) put(x);
        return put(type).put(offset);
    }
    Raw& pad(uint64_t align) {
        while (b.size() % align) b.push_back(0);
        return *this;
    }
    Raw& zeros(uint64_t n) {
        b.insert(b.end(), n, 0);
        return *this;
    }
};

void expect_error(const Raw& r, ErrorCode code, const std::string& substring) {
    auto f = File::open_memory(r.b, "case.gguf");
    ASSERT_FALSE(f.ok()) << "expected an error containing '" << substring << "'";
    EXPECT_EQ(f.error().code, code) << f.error().message;
    EXPECT_NE(f.error().message.find(substring), std::string::npos) << f.error().message;
    EXPECT_NE(f.error().message.find("case.gguf"), std::string::npos) << f.error().message;
}

// One valid F32 tensor [1, 4] (16 bytes) after one KV.
Raw one_tensor(std::vector<uint64_t> ne = {4, 1}, uint32_t type = 0, uint64_t offset = 0, uint64_t data = 16) {
    Raw r;
    r.header(3, 1, 1).kv_str("general.architecture", "llama").tensor("w", std::move(ne), type, offset).pad(32);
    return r.zeros(data);
}

TEST(GgufReader, AcceptsMinimalFiles) {
    auto f = File::open_memory(one_tensor().b);
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_TRUE((*f)->tensors()[0].shape == (Shape{1, 4}));
    Raw v2;
    v2.header(2, 0, 1).kv_u32("a.b", 7);
    auto f2 = File::open_memory(v2.b);
    ASSERT_TRUE(f2.ok()) << f2.error().message;
    EXPECT_EQ((*f2)->version(), 2u);
    EXPECT_EQ((*f2)->get_int("a.b"), 7);
}

TEST(GgufReader, RejectsBadHeaders) {
    Raw magic;
    magic.b = {'G', 'G', 'M', 'L', 3, 0, 0, 0};
    magic.zeros(16);
    expect_error(magic, ErrorCode::kBadInput, "not a GGUF file");
    expect_error(Raw().header(1, 0, 0), ErrorCode::kUnsupported, "version 1 is not supported");
    expect_error(Raw().header(4, 0, 0), ErrorCode::kUnsupported, "version 4 is not supported");
    expect_error(Raw().header(0x03000000, 0, 0), ErrorCode::kUnsupported, "big-endian");
    expect_error(Raw().header(3, 1ull << 60, 0).zeros(64), ErrorCode::kBadInput, "tensor count 1152921504606846976");
    expect_error(Raw().header(3, 0, 1ull << 60).zeros(64), ErrorCode::kBadInput, "KV count 1152921504606846976");
}

TEST(GgufReader, RejectsBadMetadata) {
    expect_error(Raw().header(3, 0, 1).str("k").put<uint32_t>(8).put<uint64_t>(1000).zeros(10), ErrorCode::kBadInput,
                 "truncated: metadata key 'k' needs 1000 bytes");
    expect_error(Raw().header(3, 0, 1).put<uint64_t>(70000).zeros(70000), ErrorCode::kBadInput,
                 "length 70000, more than the limit of 65535");
    expect_error(Raw().header(3, 0, 2).kv_u32("a", 1).kv_u32("a", 2), ErrorCode::kBadInput,
                 "duplicate metadata key 'a'");
    expect_error(Raw().header(3, 0, 1).kv_u32("bad\xFFkey", 1), ErrorCode::kBadInput, "not valid UTF-8");
    expect_error(Raw().header(3, 0, 1).kv_str("k", "\xED\xA0\x80"), ErrorCode::kBadInput, "not valid UTF-8");
    expect_error(Raw().header(3, 0, 1).str("k").put<uint32_t>(13).zeros(8), ErrorCode::kBadInput,
                 "value type 13, expected 0..12");
    expect_error(Raw().header(3, 0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2), ErrorCode::kBadInput,
                 "bool with byte 2");
    expect_error(Raw().header(3, 0, 1).str("k").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(1ull << 60).zeros(8),
                 ErrorCode::kBadInput, "truncated: metadata key 'k' at offset");
    Raw deep;
    deep.header(3, 0, 1).str("k").put<uint32_t>(9);
    for (int i = 0; i < 20; ++i) deep.put<uint32_t>(9).put<uint64_t>(1);
    expect_error(deep, ErrorCode::kBadInput, "nests arrays deeper");
    expect_error(Raw().header(3, 0, 1).kv_u32("general.alignment", 0), ErrorCode::kBadInput,
                 "general.alignment is 0, expected a power of two");
    expect_error(Raw().header(3, 0, 1).kv_u32("general.alignment", 3), ErrorCode::kBadInput, "general.alignment is 3");
    expect_error(Raw().header(3, 0, 1).kv_str("general.alignment", "32"), ErrorCode::kBadInput,
                 "general.alignment has type string");
}

TEST(GgufReader, RejectsBadTensorInfos) {
    expect_error(one_tensor({4, 1, 1, 1, 1}), ErrorCode::kBadInput, "tensor 'w' at offset 78 has n_dims 5");
    expect_error(one_tensor({}), ErrorCode::kBadInput, "has n_dims 0");
    expect_error(one_tensor({4, 0}), ErrorCode::kBadInput, "ne[1] = 0");
    expect_error(one_tensor({4, 1}, 31), ErrorCode::kUnsupported, "ggml type id 31");
    expect_error(one_tensor({4, 1}, 1000000), ErrorCode::kUnsupported, "ggml type id 1000000");
    expect_error(one_tensor({33, 1}, 2, 0, 64), ErrorCode::kBadInput,
                 "ne[0] = 33, not a multiple of its block size 32");
    expect_error(one_tensor({1ull << 32, 1ull << 32}), ErrorCode::kBadInput, "overflows");
    expect_error(one_tensor({4, 1}, 0, 32), ErrorCode::kBadInput, "truncated: tensor 'w' needs 16 bytes at offset");
    expect_error(one_tensor({4, 1}, 0, 8), ErrorCode::kBadInput, "offset 8, not a multiple of the alignment 32");
    expect_error(one_tensor({4, 1}, 0, 0, 15), ErrorCode::kBadInput, "the file ends at");
    expect_error(one_tensor({4, 1}, 0, ~0ull - 31), ErrorCode::kBadInput, "truncated: tensor 'w'");

    Raw dup;
    dup.header(3, 2, 0).tensor("w", {4}, 0, 0).tensor("w", {4}, 0, 32).pad(32).zeros(64);
    expect_error(dup, ErrorCode::kBadInput, "duplicate tensor name 'w'");
    Raw overlap;
    overlap.header(3, 2, 0).tensor("a", {16}, 0, 0).tensor("b", {4}, 0, 32).pad(32).zeros(64);
    expect_error(overlap, ErrorCode::kBadInput, "tensors 'a' (bytes 96..160) and 'b' (bytes 128..144) overlap");
    Raw long_name;
    long_name.header(3, 1, 0).tensor(std::string(64, 'n'), {4}, 0, 0).pad(32).zeros(16);
    expect_error(long_name, ErrorCode::kBadInput, "length 64, more than the limit of 63");
    Raw bad_name;
    bad_name.header(3, 1, 0).tensor("w\x80", {4}, 0, 0).pad(32).zeros(16);
    expect_error(bad_name, ErrorCode::kBadInput, "name of tensor #0 at offset 24 is not valid UTF-8");
}

// Every strict prefix of a valid file that cuts into its header or tensor data must fail cleanly with
// "truncated"; prefixes that only drop the trailing padding are still valid files.
// general.alignment 1 is valid (ggml accepts any power of two), so tensors may start at odd addresses: those are
// copied aligned at open, and what the kernels read (dequantized rows) equals the same tensor in an aligned file.
TEST(GgufReader, MisalignedTensorsAreReadFromAlignedCopies) {
    std::vector<uint8_t> q4(18 * 2), f32(4 * 3);
    for (size_t i = 0; i < q4.size(); ++i) q4[i] = uint8_t(i * 37 + 11);
    q4[0] = 0x00, q4[1] = 0x3C, q4[18] = 0x00, q4[19] = 0xC0; // block scales 1.0 and -2.0 (f16)
    const float fv[3] = {1.5f, -2.25f, 3.0f};
    std::memcpy(f32.data(), fv, sizeof(fv));
    auto build = [&](uint32_t alignment) {
        Writer w;
        EXPECT_TRUE(w.set("general.alignment", Value::u32(alignment)).ok());
        EXPECT_TRUE(w.add_tensor("odd", DType::kI8, Shape{3}, {1, 2, 3}).ok()); // pushes the next tensors off
        EXPECT_TRUE(w.add_tensor("q", DType::kQ4_0, Shape{1, 64}, q4).ok());
        EXPECT_TRUE(w.add_tensor("byte", DType::kI8, Shape{1}, {9}).ok());
        EXPECT_TRUE(w.add_tensor("f", DType::kF32, Shape{3}, f32).ok());
        auto bytes = w.write_to_memory();
        EXPECT_TRUE(bytes.ok());
        return std::move(bytes).value();
    };
    const std::vector<uint8_t> packed = build(1), aligned = build(32);
    auto a = File::open_memory(aligned, "aligned.gguf");
    auto p = File::open_memory(packed, "packed.gguf");
    ASSERT_TRUE(a.ok() && p.ok());
    EXPECT_EQ((*a)->realigned_bytes(), 0u);
    const auto* fq = (*p)->find("q");
    const auto* ff = (*p)->find("f");
    ASSERT_TRUE(fq && ff);
    // In the file image the tensors really are misaligned for their types (the premise of the test)...
    EXPECT_NE((reinterpret_cast<uintptr_t>(packed.data()) + fq->offset_bytes) % 2 +
                  (reinterpret_cast<uintptr_t>(packed.data()) + ff->offset_bytes) % 4,
              0u);
    EXPECT_GT((*p)->realigned_bytes(), 0u);
    // ...but what readers get is aligned and holds the same bytes.
    for (const char* name : {"q", "f"}) {
        SCOPED_TRACE(name);
        auto vp = (*p)->view(name);
        auto va = (*a)->view(name);
        ASSERT_TRUE(vp.ok() && va.ok());
        EXPECT_EQ(reinterpret_cast<uintptr_t>(vp->data) % 4, 0u);
        ASSERT_EQ(vp->n_bytes(), va->n_bytes());
        EXPECT_EQ(std::memcmp(vp->data, va->data, va->n_bytes()), 0);
    }
    std::vector<float> rp(64), ra(64);
    scheme::find_scheme(DType::kQ4_0)->dequantize_row((*p)->view("q")->data, rp.data(), 64);
    scheme::find_scheme(DType::kQ4_0)->dequantize_row((*a)->view("q")->data, ra.data(), 64);
    EXPECT_EQ(rp, ra);
    EXPECT_EQ(ra[0], float((q4[2] & 0x0F) - 8) * 1.0f);
    EXPECT_EQ(ra[32], float((q4[20] & 0x0F) - 8) * -2.0f);
    const float* pf = reinterpret_cast<const float*>((*p)->view("f")->data);
    EXPECT_EQ(pf[1], -2.25f);
}

TEST(GgufReader, EveryTruncationFailsCleanly) {
    Writer w;
    ASSERT_TRUE(w.set("general.architecture", Value::string("llama")).ok());
    ASSERT_TRUE(w.set("a.nested", Value::array(ValueType::kArray, {Value::string_array({"x", "yz"})})).ok());
    ASSERT_TRUE(w.set("a.f", Value::f32(1.f)).ok());
    ASSERT_TRUE(w.add_tensor("t0", DType::kF16, Shape{2, 3}, std::vector<uint8_t>(12, 1)).ok());
    ASSERT_TRUE(w.add_tensor("t1", DType::kQ8_0, Shape{1, 32}, std::vector<uint8_t>(34, 2)).ok());
    auto bytes = w.write_to_memory();
    ASSERT_TRUE(bytes.ok());
    auto full = File::open_memory(*bytes);
    ASSERT_TRUE(full.ok()) << full.error().message;
    const auto& t1 = *(*full)->find("t1");
    const uint64_t data_end = t1.offset_bytes + t1.n_bytes;
    ASSERT_LT(data_end, bytes->size()); // there is trailing padding
    for (size_t n = 0; n < bytes->size(); ++n) {
        std::vector<uint8_t> prefix(bytes->begin(), bytes->begin() + static_cast<std::ptrdiff_t>(n));
        auto f = File::open_memory(prefix);
        if (n >= data_end) {
            EXPECT_TRUE(f.ok()) << n;
            continue;
        }
        ASSERT_FALSE(f.ok()) << "prefix of " << n << " bytes parsed";
        EXPECT_EQ(f.error().code, ErrorCode::kBadInput) << n;
        EXPECT_NE(f.error().message.find("truncated"), std::string::npos) << n << ": " << f.error().message;
    }
}

TEST(GgufReader, OpenReportsIoErrors) {
    auto f = File::open("/nonexistent/dir/x.gguf");
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.error().code, ErrorCode::kIo);
}

// ---- llama.cpp golden files ----

void check_metadata(const File& f, const nlohmann::json& md) {
    for (const auto& [key, want] : md.items()) {
        const Value* v = f.get(key);
        ASSERT_NE(v, nullptr) << key;
        if (want.is_string())
            EXPECT_EQ(f.get_string(key), want.get<std::string>()) << key;
        else if (want.is_number_integer())
            EXPECT_EQ(f.get_int(key), want.get<int64_t>()) << key;
        else if (want.is_number_float())
            EXPECT_EQ(f.get_float(key), want.get<double>()) << key;
        else if (want.is_boolean())
            EXPECT_EQ(f.get_bool(key), want.get<bool>()) << key;
        else
            ADD_FAILURE() << "unexpected manifest value for " << key;
    }
}

TEST(GgufGolden, MatchesManifest) {
    LOWBIT_REQUIRE_SHARED(manifest_path, "data/golden/llamacpp/manifest.json");
    auto text = read_file_to_string(manifest_path);
    ASSERT_TRUE(text.ok());
    const auto manifest = nlohmann::json::parse(*text);
    const std::string dir = manifest_path.substr(0, manifest_path.rfind('/'));
    ASSERT_GE(manifest["files"].size(), 10u);
    for (const auto& mf : manifest["files"]) {
        const std::string name = mf["file"];
        SCOPED_TRACE(name);
        auto f = File::open(dir + "/" + name);
        ASSERT_TRUE(f.ok()) << f.error().message;
        EXPECT_EQ((*f)->file_size(), mf["file_size"].get<uint64_t>());
        EXPECT_EQ((*f)->version(), mf["gguf_version"].get<uint32_t>());
        EXPECT_EQ((*f)->alignment(), mf["alignment"].get<uint64_t>());
        EXPECT_EQ((*f)->data_offset(), mf["data_offset"].get<uint64_t>());
        ASSERT_EQ((*f)->tensors().size(), mf["n_tensors"].get<size_t>());
        ASSERT_EQ(mf["tensors"].size(), (*f)->tensors().size());
        for (size_t i = 0; i < mf["tensors"].size(); ++i) {
            const auto& mt = mf["tensors"][i];
            const auto& t = (*f)->tensors()[i];
            ASSERT_EQ(t.name, mt["name"].get<std::string>());
            EXPECT_EQ((*f)->ggml_type(t), mt["ggml_type_id"].get<int>()) << t.name;
            EXPECT_EQ(dtype_traits(t.dtype).ggml_type, mt["ggml_type_id"].get<int>()) << t.name;
            const auto ne = mt["shape"].get<std::vector<int64_t>>(); // ggml order
            ASSERT_EQ(t.shape.n_dims, static_cast<int>(ne.size())) << t.name;
            for (size_t d = 0; d < ne.size(); ++d) EXPECT_EQ(t.shape[t.shape.n_dims - 1 - int(d)], ne[d]) << t.name;
            EXPECT_EQ(t.offset_bytes, mt["offset"].get<uint64_t>()) << t.name;
            EXPECT_EQ(t.n_bytes, mt["nbytes"].get<uint64_t>()) << t.name;
            EXPECT_EQ(sha256_hex((*f)->tensor_data(t), t.n_bytes), mt["sha256"].get<std::string>()) << t.name;
        }
        check_metadata(**f, mf["metadata"]);
    }
}

} // namespace
} // namespace lowbit::gguf
