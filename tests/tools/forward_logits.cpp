// SPDX-License-Identifier: MIT
// forward_logits: runs a model (HF directory or .gguf) on given token ids and writes the logits as raw
// little-endian f32, [n_tokens, n_vocab] row-major — the C++ side of tests/oracle/test_forward_oracle.py.
// Usage: forward_logits MODEL OUT.f32 --tokens 1,2,3 [--threads N] [--n-batch N] [--decode] [--backend ref|cpu]
//                       [--cache-type f32|f16|q8_0]
//   --decode: one eval per token (KV-cache path) instead of one batched eval.
//   --cache-type: KV cache rows; f32 by default here (the oracles compare the exact forward with float64 numpy).
#include "runtime/session.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int fail(const std::string& msg) {
    std::fprintf(stderr, "forward_logits: %s\n", msg.c_str());
    return 1;
}

std::vector<int32_t> parse_tokens(const std::string& s) {
    std::vector<int32_t> out;
    size_t pos = 0;
    while (pos < s.size()) {
        const size_t comma = s.find(',', pos);
        out.push_back(int32_t(std::strtol(s.substr(pos, comma - pos).c_str(), nullptr, 10)));
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    return out;
}

} // namespace

int main(int argc, char** argv) {
    using namespace lowbit;
    if (argc < 3)
        return fail("usage: forward_logits MODEL OUT.f32 --tokens 1,2,3 [--threads N] [--n-batch N] "
                    "[--decode] [--backend ref|cpu]");
    const std::string model = argv[1], out_path = argv[2];
    runtime::SessionOptions o;
    o.cache_type = DType::kF32;
    std::vector<int32_t> tokens;
    bool decode = false;
    for (int i = 3; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--tokens" && has_value)
            tokens = parse_tokens(argv[++i]);
        else if (a == "--threads" && has_value)
            o.n_threads = std::atoi(argv[++i]);
        else if (a == "--n-batch" && has_value)
            o.n_batch = std::atoll(argv[++i]);
        else if (a == "--backend" && has_value)
            o.backend = std::strcmp(argv[++i], "ref") == 0 ? kernel::Backend::kRef : kernel::Backend::kCpu;
        else if (a == "--cache-type" && has_value) {
            auto t = runtime::parse_cache_type(argv[++i]);
            if (!t.ok()) return fail(t.error().message);
            o.cache_type = *t;
        } else if (a == "--decode")
            decode = true;
        else
            return fail("unknown argument " + a);
    }
    if (tokens.empty()) return fail("--tokens is required");
    o.load_tokenizer = false;
    auto session = runtime::Session::open(model, o);
    if (!session.ok()) return fail(session.error().message);
    runtime::Session& s = **session;
    std::vector<float> all, row;
    if (decode) {
        for (int32_t t : tokens) {
            const Status st = s.eval(std::span(&t, 1), false, row);
            if (!st.ok()) return fail(st.error().message);
            all.insert(all.end(), row.begin(), row.end());
        }
    } else {
        const Status st = s.eval(tokens, true, all);
        if (!st.ok()) return fail(st.error().message);
    }
    std::FILE* f = std::fopen(out_path.c_str(), "wb");
    if (!f) return fail("cannot write " + out_path);
    const bool ok = std::fwrite(all.data(), sizeof(float), all.size(), f) == all.size();
    if (std::fclose(f) != 0 || !ok) return fail("short write to " + out_path);
    std::printf("%zu tokens x %lld vocab\n", tokens.size(), static_cast<long long>(s.n_vocab()));
    return 0;
}
