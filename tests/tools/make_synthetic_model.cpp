// SPDX-License-Identifier: MIT
// make_synthetic_model: writes a random Llama-family HF checkpoint of any size (default: Llama-2-7B shapes) for
// speed and memory benchmarks (bench/gptq_7b.sh). Weights are bf16 N(0, 0.02²) with a few outlier input channels
// per matrix (x8, like real checkpoints' massive activations/weights), norms 1.0; config.json and the tokenizer
// files come from a small model directory (--tokenizer-from), so vocab_size and special tokens match it.
//   make_synthetic_model OUT_DIR --tokenizer-from DIR [--hidden 4096] [--ff 11008] [--layers 32] [--heads 32]
//       [--kv-heads 32] [--ctx 4096] [--seed 1] [--threads N]
// Streaming: one preallocated model.safetensors is filled by worker threads (counter-based RNG per 4 Mi-element
// chunk, pwrite at the chunk's offset), so 13 GB take seconds and little memory.
#include "core/half.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

struct Spec {
    std::string name;
    std::vector<int64_t> shape; // [rows, cols] or [n]
    bool norm = false;          // all ones
    uint64_t offset = 0;        // bytes from the start of the data section
    int64_t n_elems() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
};

uint64_t splitmix(uint64_t& s) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Outlier input channels of tensor t: 4 per matrix, chosen by hash.
bool is_outlier(uint64_t seed, size_t t, int64_t col, int64_t cols) {
    for (uint64_t j = 0; j < 4; ++j) {
        uint64_t s = seed * 1000003ull + t * 131ull + j;
        if (int64_t(splitmix(s) % uint64_t(cols)) == col) return true;
    }
    return false;
}

// Fills out[0, n) with the elements [begin, begin + n) of tensor t (bf16).
void fill_chunk(const Spec& spec, size_t t, uint64_t seed, int64_t begin, int64_t n, uint16_t* out) {
    if (spec.norm) {
        std::fill(out, out + n, lowbit::f32_to_bf16(1.0f));
        return;
    }
    const int64_t cols = spec.shape.back();
    std::vector<char> outlier(size_t(cols), 0);
    for (int64_t c = 0; c < cols; ++c) outlier[size_t(c)] = spec.shape.size() == 2 && is_outlier(seed, t, c, cols);
    uint64_t state = seed ^ (uint64_t(t) << 40) ^ uint64_t(begin) * 0x2545f4914f6cdd1dull;
    for (int64_t i = 0; i < n; i += 2) { // Box-Muller: two normals per pair of uniforms
        const uint64_t r = splitmix(state);
        const float u1 = (float(uint32_t(r >> 40)) + 1.0f) * (1.0f / 16777217.0f); // (0, 1]
        const float u2 = float(uint32_t(r & 0xffffff)) * (1.0f / 16777216.0f);
        const float rad = 0.02f * std::sqrt(-2.0f * std::log(u1));
        const float z[2] = {rad * std::cos(6.2831853f * u2), rad * std::sin(6.2831853f * u2)};
        for (int k = 0; k < 2 && i + k < n; ++k) {
            const int64_t col = (begin + i + k) % cols;
            out[i + k] = lowbit::f32_to_bf16(outlier[size_t(col)] ? 8.0f * z[k] : z[k]);
        }
    }
}

std::vector<Spec> llama_specs(int64_t vocab, int64_t hidden, int64_t ff, int64_t layers, int64_t heads,
                              int64_t kv_heads) {
    const int64_t head_dim = hidden / heads, kv = kv_heads * head_dim;
    std::vector<Spec> s;
    s.push_back({"model.embed_tokens.weight", {vocab, hidden}});
    for (int64_t l = 0; l < layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        s.push_back({p + "input_layernorm.weight", {hidden}, true});
        s.push_back({p + "self_attn.q_proj.weight", {hidden, hidden}});
        s.push_back({p + "self_attn.k_proj.weight", {kv, hidden}});
        s.push_back({p + "self_attn.v_proj.weight", {kv, hidden}});
        s.push_back({p + "self_attn.o_proj.weight", {hidden, hidden}});
        s.push_back({p + "post_attention_layernorm.weight", {hidden}, true});
        s.push_back({p + "mlp.gate_proj.weight", {ff, hidden}});
        s.push_back({p + "mlp.up_proj.weight", {ff, hidden}});
        s.push_back({p + "mlp.down_proj.weight", {hidden, ff}});
    }
    s.push_back({"model.norm.weight", {hidden}, true});
    s.push_back({"lm_head.weight", {vocab, hidden}});
    return s;
}

int usage(const char* msg) {
    std::fprintf(stderr,
                 "make_synthetic_model: %s\nusage: make_synthetic_model OUT_DIR --tokenizer-from DIR [--hidden N] "
                 "[--ff N] [--layers N] [--heads N] [--kv-heads N] [--ctx N] [--seed N] [--threads N]\n",
                 msg);
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage("missing OUT_DIR");
    const std::string out_dir = argv[1];
    std::string tok_dir;
    int64_t hidden = 4096, ff = 11008, layers = 32, heads = 32, kv_heads = 32, ctx = 4096, seed = 1;
    int64_t threads = int64_t(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return usage(("missing value after " + a).c_str());
        const std::string v = argv[++i];
        if (a == "--tokenizer-from") {
            tok_dir = v;
            continue;
        }
        int64_t* dst = a == "--hidden"     ? &hidden
                       : a == "--ff"       ? &ff
                       : a == "--layers"   ? &layers
                       : a == "--heads"    ? &heads
                       : a == "--kv-heads" ? &kv_heads
                       : a == "--ctx"      ? &ctx
                       : a == "--seed"     ? &seed
                       : a == "--threads"  ? &threads
                                           : nullptr;
        if (!dst) return usage(("unknown option " + a).c_str());
        *dst = std::atoll(v.c_str());
        if (*dst < 1) return usage((a + " must be >= 1").c_str());
    }
    if (tok_dir.empty()) return usage("--tokenizer-from DIR is required (config.json + tokenizer files)");
    if (hidden % heads != 0 || heads % kv_heads != 0) return usage("hidden % heads and heads % kv-heads must be 0");
    namespace fs = std::filesystem;
    nlohmann::json cfg;
    try {
        std::ifstream f(tok_dir + "/config.json");
        cfg = nlohmann::json::parse(f);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_synthetic_model: cannot read %s/config.json: %s\n", tok_dir.c_str(), e.what());
        return 3;
    }
    const int64_t vocab = cfg.value("vocab_size", int64_t(0));
    if (vocab < 1) return usage("the source config.json has no vocab_size");
    cfg["hidden_size"] = hidden, cfg["intermediate_size"] = ff, cfg["num_hidden_layers"] = layers;
    cfg["num_attention_heads"] = heads, cfg["num_key_value_heads"] = kv_heads, cfg["head_dim"] = hidden / heads;
    cfg["max_position_embeddings"] = ctx, cfg["torch_dtype"] = "bfloat16", cfg["tie_word_embeddings"] = false;
    fs::create_directories(out_dir);
    std::ofstream(out_dir + "/config.json") << cfg.dump(2) << "\n";
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "tokenizer.model"})
        if (fs::exists(tok_dir + "/" + f))
            fs::copy_file(tok_dir + "/" + f, out_dir + "/" + f, fs::copy_options::overwrite_existing);

    std::vector<Spec> specs = llama_specs(vocab, hidden, ff, layers, heads, kv_heads);
    nlohmann::json header;
    header["__metadata__"] = {{"format", "pt"}, {"writer", "lowbit make_synthetic_model"}};
    uint64_t off = 0;
    for (Spec& s : specs) {
        s.offset = off;
        const uint64_t bytes = uint64_t(s.n_elems()) * 2;
        header[s.name] = {{"dtype", "BF16"}, {"shape", s.shape}, {"data_offsets", {off, off + bytes}}};
        off += bytes;
    }
    std::string hs = header.dump();
    hs.append((8 - hs.size() % 8) % 8, ' ');
    const uint64_t data_start = 8 + hs.size(), total = data_start + off;
    const std::string path = out_dir + "/model.safetensors";
    const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0 || ::ftruncate(fd, off_t(total)) != 0) {
        std::fprintf(stderr, "make_synthetic_model: cannot create %s (%llu bytes): %s\n", path.c_str(),
                     (unsigned long long)total, std::strerror(errno));
        return 1;
    }
    const uint64_t hlen = hs.size();
    bool ok = ::pwrite(fd, &hlen, 8, 0) == 8 && ::pwrite(fd, hs.data(), hs.size(), 8) == ssize_t(hs.size());

    struct Item {
        size_t t;
        int64_t begin, n;
    };
    constexpr int64_t kChunk = int64_t(1) << 22;
    std::vector<Item> items;
    for (size_t t = 0; t < specs.size(); ++t)
        for (int64_t b = 0; b < specs[t].n_elems(); b += kChunk)
            items.push_back({t, b, std::min(kChunk, specs[t].n_elems() - b)});
    const auto t0 = std::chrono::steady_clock::now();
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::vector<std::thread> pool;
    for (int64_t w = 0; w < threads; ++w)
        pool.emplace_back([&] {
            std::vector<uint16_t> buf(static_cast<size_t>(kChunk));
            for (size_t i; (i = next.fetch_add(1)) < items.size() && !failed;) {
                const Item& it = items[i];
                fill_chunk(specs[it.t], it.t, uint64_t(seed), it.begin, it.n, buf.data());
                const uint64_t pos = data_start + specs[it.t].offset + uint64_t(it.begin) * 2;
                const size_t bytes = size_t(it.n) * 2;
                if (::pwrite(fd, buf.data(), bytes, off_t(pos)) != ssize_t(bytes)) failed = true;
            }
        });
    for (auto& th : pool) th.join();
    ok = ok && !failed && ::close(fd) == 0;
    if (!ok) {
        std::fprintf(stderr, "make_synthetic_model: writing %s failed: %s\n", path.c_str(), std::strerror(errno));
        return 1;
    }
    int64_t n_params = 0;
    for (const Spec& s : specs) n_params += s.n_elems();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("wrote %s: %lld tensors, %.3f B params, %.2f GB in %.2f s (%lld threads)\n", out_dir.c_str(),
                (long long)specs.size(), double(n_params) / 1e9, double(total) / 1e9, secs, (long long)threads);
    return 0;
}
