// SPDX-License-Identifier: MIT
// forward_bench: tokens/s of the CPU forward pass — prompt processing (one batched eval) and generation (one
// token per eval, growing KV cache). The model is a file (--model PATH) or a seeded synthetic Llama built in
// memory (default: a ~0.5B-parameter shape that fits on a small machine), with matrices in any scheme dtype.
// Usage: forward_bench [--model PATH] [--dtype f16] [--hidden 1024] [--layers 8] [--heads 16] [--kv-heads 4]
//                      [--ff 2816] [--vocab 32000] [--prompt 128] [--gen 32] [--threads N] [--backend ref|cpu]
#include "model/arch/arch_list.h"
#include "model/memory_store.h"
#include "runtime/session.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

int fail(const std::string& msg) {
    std::fprintf(stderr, "forward_bench: %s\n", msg.c_str());
    return 1;
}

} // namespace

int main(int argc, char** argv) {
    using namespace lowbit;
    std::string model_path, dtype_str = "f16";
    format::ModelConfig c;
    c.arch = "llama", c.hidden_size = 1024, c.n_layers = 8, c.n_heads = 16, c.n_kv_heads = 4;
    c.intermediate_size = 2816, c.vocab_size = 32000, c.max_position_embeddings = 4096;
    int64_t n_prompt = 128, n_gen = 32;
    runtime::SessionOptions o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        const long long x = std::atoll(v.c_str());
        if (a == "--model")
            model_path = v;
        else if (a == "--dtype")
            dtype_str = v;
        else if (a == "--hidden")
            c.hidden_size = x;
        else if (a == "--layers")
            c.n_layers = x;
        else if (a == "--heads")
            c.n_heads = x;
        else if (a == "--kv-heads")
            c.n_kv_heads = x;
        else if (a == "--ff")
            c.intermediate_size = x;
        else if (a == "--vocab")
            c.vocab_size = x;
        else if (a == "--prompt")
            n_prompt = x;
        else if (a == "--gen")
            n_gen = x;
        else if (a == "--threads")
            o.n_threads = int(x);
        else if (a == "--backend")
            o.backend = v == "ref" ? kernel::Backend::kRef : kernel::Backend::kCpu;
        else
            return fail("unknown argument " + a);
    }
    o.n_ctx = n_prompt + n_gen;
    o.load_tokenizer = false;
    Result<std::unique_ptr<runtime::Session>> session = make_error(ErrorCode::kInternal, "unset");
    const auto t_load = Clock::now();
    if (!model_path.empty()) {
        session = runtime::Session::open(model_path, o);
    } else {
        const auto dtype = dtype_from_name(dtype_str);
        if (!dtype) return fail("unknown dtype " + dtype_str);
        auto store = model::make_synthetic_model(c, model::kLlamaArch, model::SourceFormat::kHf, *dtype, 42);
        if (!store.ok()) return fail(store.error().message);
        session = runtime::Session::from_store(*store, c, model::SourceFormat::kHf, o);
    }
    if (!session.ok()) return fail(session.error().message);
    runtime::Session& s = **session;
    const auto& cfg = s.config();
    std::printf("model: %s hidden %lld, layers %lld, heads %lld/%lld, ff %lld, vocab %lld, weights %s; threads %d; "
                "load %.2f s\n",
                model_path.empty() ? "synthetic llama" : model_path.c_str(), (long long)cfg.hidden_size,
                (long long)cfg.n_layers, (long long)cfg.n_heads, (long long)cfg.n_kv_heads,
                (long long)cfg.intermediate_size, (long long)cfg.vocab_size,
                dtype_name(s.transformer().weights().layers[0].wq.dtype).data(), s.pool().n_threads(),
                seconds_since(t_load));
    std::vector<int32_t> prompt(static_cast<size_t>(n_prompt));
    for (int64_t i = 0; i < n_prompt; ++i) prompt[size_t(i)] = int32_t((i * 7919 + 13) % s.n_vocab());
    std::vector<float> logits;
    auto t0 = Clock::now();
    if (auto st = s.eval(prompt, false, logits); !st.ok()) return fail(st.error().message);
    const double t_prompt = seconds_since(t0);
    int32_t tok = 1;
    t0 = Clock::now();
    for (int64_t i = 0; i < n_gen; ++i) {
        if (auto st = s.eval(std::span(&tok, 1), false, logits); !st.ok()) return fail(st.error().message);
        tok = int32_t((tok * 31 + 7) % s.n_vocab());
    }
    const double t_gen = seconds_since(t0);
    std::printf("prompt: %lld tokens in %.3f s = %.1f tokens/s\n", (long long)n_prompt, t_prompt,
                double(n_prompt) / t_prompt);
    std::printf("generation: %lld tokens in %.3f s = %.2f tokens/s\n", (long long)n_gen, t_gen, double(n_gen) / t_gen);
    return 0;
}
