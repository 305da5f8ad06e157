// SPDX-License-Identifier: MIT
// `lowbit run -m MODEL (-p PROMPT | -f FILE) [-n N] [sampling flags] [-c N] [-t N] [-b N] [--no-bos]`: generate
// text from a prompt, like llama.cpp's llama-cli in single-shot mode. MODEL: a Hugging Face folder or a .gguf.
// Output: the prompt (unless --no-display-prompt), then the generated text streamed to stdout; the seed,
// stop reason and llama.cpp-style timings go to stderr. Documented behaviors:
//   -n -1 (default) generates until an end-of-generation token or a full context; -n 0 only evaluates the
//   prompt and prints the timings (a prompt-processing benchmark);
//   a prompt longer than the context is an error (exit 2) giving its token count and the context size;
//   a prompt that is not valid UTF-8 is an error (exit 3) naming the first bad byte and its offset;
//   -f drops one trailing newline of the file (as llama.cpp does);
//   --seed -1 (default) picks a random seed and prints it, so any run can be repeated; --temp 0 is greedy.
#include "cli/commands.h"
#include "core/file.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "runtime/generate/generate.h"
#include "runtime/session.h"
#include "runtime/tokenizer/unicode.h"

#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <random>
#include <string>

namespace lowbit::cli {
namespace {

struct RunArgs {
    std::string model, prompt, file;
    int64_t n_predict = -1;
    int64_t n_ctx = 0;
    int64_t n_batch = 512;
    int64_t seed = -1;
    int n_threads = 0;
    std::string cache_type;
    DeviceArgs device;
    bool no_bos = false;
    bool no_display_prompt = false;
    runtime::SamplerOptions sampling;
};

Result<std::string> read_prompt(const RunArgs& a, bool has_prompt) {
    std::string text = a.prompt;
    std::string what = "prompt";
    if (!has_prompt) {
        LOWBIT_ASSIGN_OR_RETURN(text, read_file_to_string(a.file));
        if (text.empty()) return make_error(ErrorCode::kBadInput, a.file + ": prompt file is empty");
        if (text.back() == '\n') text.pop_back(); // as llama.cpp's -f: the file's final newline is not prompt
        what = "prompt file " + a.file;
    }
    LOWBIT_TRY(tokenizer::check_utf8_text(text, what));
    return text;
}

void write_out(std::string_view s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
}

Status run_run(RunArgs a, bool has_prompt, bool has_file) {
    if (has_prompt == has_file) return make_error(ErrorCode::kUsage, "run needs exactly one of -p PROMPT or -f FILE");
    if (a.n_ctx < 0) return make_error(ErrorCode::kUsage, "-c/--ctx-size must be >= 0 (0 = the model's, up to 4096)");
    if (a.n_batch < 1) return make_error(ErrorCode::kUsage, "-b/--batch-size must be >= 1");
    if (a.n_predict < -1) return make_error(ErrorCode::kUsage, "-n must be >= -1 (-1 = until end of generation)");
    LOWBIT_TRY(runtime::validate(a.sampling));
    LOWBIT_ASSIGN_OR_RETURN(const std::string text, read_prompt(a, has_prompt));
    a.sampling.seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : std::random_device{}();
    std::fprintf(stderr, "seed: %llu\n", static_cast<unsigned long long>(a.sampling.seed));

    ThreadPool::set_default_threads(a.n_threads);
    const auto t0 = std::chrono::steady_clock::now();
    runtime::SessionOptions so;
    so.n_threads = a.n_threads;
    so.n_ctx = a.n_ctx;
    so.n_batch = a.n_batch;
    LOWBIT_ASSIGN_OR_RETURN(so.cache_type, cache_type_of(a.cache_type));
    LOWBIT_ASSIGN_OR_RETURN(so.device, device_of(a.device));
    LOWBIT_ASSIGN_OR_RETURN(auto session, runtime::Session::open(a.model, so));
    const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (const int64_t n_train = session->config().max_position_embeddings; n_train > 0 && session->n_ctx() > n_train)
        log_warn("context {} is larger than the {} positions the model was trained on; expect worse results",
                 session->n_ctx(), n_train);
    const tokenizer::Tokenizer* tok = session->tokenizer();
    if (!tok)
        return make_error(ErrorCode::kBadInput, a.model + ": the model has no usable tokenizer (tokenizer.json or "
                                                          "GGUF tokenizer metadata missing), so it cannot run text");
    const std::vector<int32_t> prompt = runtime::tokenize_prompt(*tok, text, !a.no_bos);
    if (static_cast<int64_t>(prompt.size()) > session->n_ctx())
        return make_error(ErrorCode::kUsage, fmt::format("the prompt has {} tokens but the context holds only {} "
                                                         "(raise -c up to the model's maximum or shorten the prompt)",
                                                         prompt.size(), session->n_ctx()));
    if (!a.no_display_prompt) write_out(text);
    runtime::Sampler sampler(a.sampling);
    runtime::GenerateOptions go;
    go.n_predict = a.n_predict;
    go.n_batch = a.n_batch;
    LOWBIT_ASSIGN_OR_RETURN(const auto result, runtime::generate(*session, *tok, prompt, sampler, go, write_out));
    if (a.n_predict != 0 || !a.no_display_prompt) write_out("\n");
    std::fprintf(stderr, "\nstop: %s, %zu tokens generated, context %lld, KV cache %s %.1f MiB\n",
                 runtime::stop_reason_name(result.stop), result.tokens.size(), static_cast<long long>(session->n_ctx()),
                 std::string(dtype_name(session->kv_cache().type())).c_str(),
                 double(session->kv_cache().bytes()) / double(1 << 20));
    const std::string timings = runtime::format_timings(result.timings, load_ms);
    std::fputs(timings.c_str(), stderr);
    return ok_status();
}

} // namespace

CommandAction setup_run(CLI::App& sub) {
    auto a = std::make_shared<RunArgs>();
    sub.add_option("-m,--model", a->model, "Hugging Face model folder or .gguf file")->required();
    CLI::Option* prompt = sub.add_option("-p,--prompt", a->prompt, "Prompt text");
    CLI::Option* file = sub.add_option("-f,--file", a->file, "Read the prompt from this file");
    prompt->excludes(file);
    sub.add_option("-n,--n-predict", a->n_predict,
                   "Tokens to generate (-1: until end of generation or full context; 0: evaluate the prompt and "
                   "print timings only)")
        ->capture_default_str();
    sub.add_option("--temp", a->sampling.temp, "Temperature (0: greedy)")->capture_default_str();
    sub.add_option("--top-k", a->sampling.top_k, "Top-k (0: off)")->capture_default_str();
    sub.add_option("--top-p", a->sampling.top_p, "Top-p (1: off)")->capture_default_str();
    sub.add_option("--min-p", a->sampling.min_p, "Min-p (0: off)")->capture_default_str();
    sub.add_option("--repeat-penalty", a->sampling.repeat_penalty, "Repeat penalty (1: off)")->capture_default_str();
    sub.add_option("--repeat-last-n", a->sampling.repeat_last_n, "Tokens the repeat penalty looks back on (-1: all)")
        ->capture_default_str();
    sub.add_option("--seed", a->seed, "RNG seed (-1: random, printed on stderr)")->capture_default_str();
    sub.add_option("-c,--ctx-size", a->n_ctx, "Context size (0: the model's maximum positions, capped at 4096)")
        ->capture_default_str();
    sub.add_option("-b,--batch-size", a->n_batch, "Prompt tokens per forward pass")->capture_default_str();
    add_threads_flag(sub, a->n_threads);
    add_cache_type_flag(sub, a->cache_type);
    add_device_flag(sub, a->device);
    sub.add_flag("--no-bos", a->no_bos, "Do not add BOS even if the vocabulary asks for it");
    sub.add_flag("--no-display-prompt", a->no_display_prompt, "Print only the generated text");
    return [a, prompt, file] { return run_run(*a, prompt->count() > 0, file->count() > 0); };
}

} // namespace lowbit::cli
