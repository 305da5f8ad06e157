// SPDX-License-Identifier: MIT
// Malformed GGUF files through the binary (`lowbit inspect`, `lowbit tokenize`): each must end with the
// documented exit code (3 bad input, 4 unsupported), "lowbit: error:" and a message naming the problem —
// never a signal. Files are built here byte by byte; the truncated-download case cuts a golden file.
// run_binary.h's string concatenation, inlined here at -O3, trips GCC 12's -Wrestrict false positive (GCC PR
// 105329) inside <string>; the warning is reported at libstdc++'s location, so it is silenced for the whole file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include "core/test_support.h"
#include "e2e/run_binary.h"

#include <fstream>
#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace lowbit::e2e {
namespace {

// Raw little-endian GGUF bytes, including invalid ones.
struct Bytes {
    std::vector<char> b;
    template <class T> Bytes& put(T x) {
        const auto* p = reinterpret_cast<const char*>(&x);
        b.insert(b.end(), p, p + sizeof(T));
        return *this;
    }
    Bytes& str(const std::string& s) {
        put<uint64_t>(s.size());
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Bytes& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv, const char* magic = "GGUF") {
        b.insert(b.end(), magic, magic + 4);
        return put(version).put(n_tensors).put(n_kv);
    }
    // One F32 tensor "w" of ne = {4, 1} and ggml type `type`, its data 16 zero bytes at relative offset 0.
    Bytes& tensor_and_data(uint32_t type) {
        str("w").put<uint32_t>(2).put<uint64_t>(4).put<uint64_t>(1).put(type).put<uint64_t>(0);
        while (b.size() % 32) b.push_back('\0');
        b.insert(b.end(), 16, '\0');
        return *this;
    }
};

std::string write_temp(const std::string& name, const std::vector<char>& bytes) {
    std::string path = ::testing::TempDir();
    path.append("/lowbit_gguf_e2e_").append(name).append(".gguf");
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
}

void expect_failure(const std::vector<std::string>& args, int exit_code, const std::string& substring) {
    const RunResult r = run_lowbit(args);
    EXPECT_EQ(r.signal, 0) << "killed by a signal: " << r.err;
    EXPECT_EQ(r.exit_code, exit_code) << r.err;
    EXPECT_NE(r.err.find("lowbit: error:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(substring), std::string::npos) << r.err;
}

TEST(GgufBadInputCli, InspectAndTokenizeReportEachClass) {
    const auto arch = [](Bytes& x) -> Bytes& { return x.str("general.architecture").put<uint32_t>(8).str("llama"); };
    struct Case {
        std::string name;
        std::vector<char> bytes;
        int exit_code;
        std::string substring;
    };
    std::vector<Case> cases;
    // inspect sniffs the format ("neither a GGUF file ..."); tokenize opens it as GGUF ("not a GGUF file").
    cases.push_back({"magic", Bytes().header(3, 0, 0, "GGML").b, 3, "GGUF file"});
    cases.push_back({"v1", Bytes().header(1, 0, 0).b, 4, "GGUF version 1 is not supported"});
    {
        Bytes x;
        arch(x.header(3, 1, 1)).tensor_and_data(31);
        cases.push_back({"type31", x.b, 4, "ggml type id 31"});
    }
    {
        Bytes x;
        arch(x.header(3, 1, 1)).tensor_and_data(0);
        x.b.resize(x.b.size() - 5);
        cases.push_back({"cut", x.b, 3, "truncated: tensor 'w' needs 16 bytes"});
    }
    {
        Bytes x;
        x.header(3, 1ull << 60, 0).b.insert(x.b.end(), 64, '\0');
        cases.push_back({"count", x.b, 3, "tensor count"});
    }
    {
        Bytes x;
        x.header(3, 0, 2).str("k").put<uint32_t>(4).put<uint32_t>(1).str("k").put<uint32_t>(4).put<uint32_t>(2);
        cases.push_back({"dupkey", x.b, 3, "duplicate metadata key 'k'"});
    }
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const std::string path = write_temp(c.name, c.bytes);
        expect_failure({"inspect", path}, c.exit_code, c.substring);
        expect_failure({"tokenize", "-m", path, "-p", "hi"}, c.exit_code, c.substring);
        std::remove(path.c_str());
    }
}

TEST(GgufBadInputCli, TruncatedGoldenDownload) {
    LOWBIT_REQUIRE_SHARED(golden, "data/golden/llamacpp/golden-Q4_0.gguf");
    std::ifstream in(golden, std::ios::binary);
    std::vector<char> head(1 << 20, '\0'); // the first MiB of a 3 MB file: header intact, tensor data cut
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    ASSERT_EQ(in.gcount(), static_cast<std::streamsize>(head.size()));
    const std::string path = write_temp("golden_cut", head);
    expect_failure({"inspect", path}, 3, "but the file ends at 1048576 (truncated download?)");
    std::remove(path.c_str());
}

} // namespace
} // namespace lowbit::e2e
